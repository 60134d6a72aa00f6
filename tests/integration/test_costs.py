"""What a turn costs: each turn's ``result.cost_usd`` is that turn's own (the SDK reports
the CLI process's running total), also after a relaunch; the session's ``cost_usd`` is
their sum; and a dollar budget turns the next message away with a 429 saying what was
spent."""

from __future__ import annotations

from typing import Any

import pytest

from ..support import chat_sse, expect_error

pytestmark = pytest.mark.cli


def _cost(events: list[dict[str, Any]]) -> float:
    (result,) = [e for e in events if e["type"] == "result"]
    return float(result["cost_usd"])


async def test_each_turn_costs_what_it_cost(api: Any, launched: Any) -> None:
    sid = (await launched("code-assistant"))["session_id"]
    costs = [_cost(await chat_sse(api, sid, "hello")) for _ in range(3)]
    assert all(c > 0 for c in costs), costs
    # not a running total: the third turn costs about what the first did (a little more
    # history), far from three times it
    assert costs[2] < 1.5 * costs[0], costs
    details = await api(f"agents/sessions/{sid}")
    assert details["cost_usd"] == pytest.approx(sum(costs), rel=1e-6)
    # a relaunch is a new CLI process: its total starts again, and so does the count
    await api(f"agents/sessions/{sid}", method="DELETE")
    again = _cost(await chat_sse(api, sid, "hello"))
    assert 0 < again < 1.5 * costs[0], (again, costs)
    details = await api(f"agents/sessions/{sid}")
    assert details["cost_usd"] == pytest.approx(sum(costs) + again, rel=1e-6)
    assert details["metered_cost_usd"] > 0  # the gateway's own meter, next to it


async def test_a_dollar_budget_refuses_the_next_message(api: Any, launched: Any) -> None:
    config = {**await api("configs/code-assistant"), "id": "thrifty", "cost_budget_usd": 0.01}
    sid = (await launched(config=config))["session_id"]
    events = await chat_sse(api, sid, "hello")  # under budget when it started
    assert events[-1]["type"] == "done"
    details = await api(f"agents/sessions/{sid}")
    assert details["metered_cost_usd"] >= 0.01 and details["cost_budget_usd"] == 0.01
    error = await expect_error(
        api(f"agents/{sid}/chat", method="POST", body={"message": "hello again"}), 429
    )
    assert "budget of $0.01 is spent" in error["message"]
    assert f"${details['metered_cost_usd']:.4f} used" in error["message"]
