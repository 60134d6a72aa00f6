"""The gateway seen from inside a real session (local provider, the real claude CLI, the
scripted model), as a prompt-injected agent would try it: its Bash calls the Files,
Batches, Models and organization APIs through its own ``ANTHROPIC_BASE_URL`` by every
method, with the session token as ``x-api-key`` and as a bearer token; its own model
calls hit the token and dollar budgets like the CLI's do.

The same checks run on the docker provider (tests/e2e/test_docker_gateway.py) and on the
kubernetes fake's TCP listener (tests/remote/test_remote_gateway.py), through
:func:`check_gateway_probe` and :func:`check_budget`.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from ..agent_probes import (
    GATEWAY_ENDPOINTS,
    GATEWAY_METHODS,
    OWN_CALL,
    gateway_probe_scenario,
    probe_result,
    spender_scenario,
)
from ..support import chat_sse, event_log

pytestmark = pytest.mark.cli

PROBE = "probe the gateway for other APIs"
SPEND = "spend past the budget yourself"


def _probe_calls(model: Any) -> list[Any]:
    """The model requests a probe made itself."""
    return [r for r in model.requests if OWN_CALL in json.dumps(r.body)]


async def check_gateway_probe(api: Any, model: Any, session_id: str) -> None:
    """The agent's calls to other APIs all get 403 and none reaches the model; the user
    sees the refusals; the CLI's own next turn works."""
    model.add_scenarios([gateway_probe_scenario(PROBE)])
    events = await chat_sse(api, session_id, PROBE)
    result = probe_result(events)
    assert result["token"], "the agent's tools see no session token: the probe proves nothing"
    tried = {(method, path, auth) for method, path, auth, _ in result["results"]}
    assert len(tried) == len(GATEWAY_ENDPOINTS) * len(GATEWAY_METHODS) * 2
    statuses = {status for *_, status in result["results"]}
    assert statuses == {403}, result["results"]
    # nothing but the CLI's own Messages calls ever reached the model
    assert _probe_calls(model) == []
    assert {(r.method, r.path.split("?")[0]) for r in model.requests} <= {
        ("POST", "/v1/messages"),
        ("POST", "/v1/messages/count_tokens"),
    }
    log = await event_log(api, session_id)
    refused = [e for e in log if e["type"] == "error" and e.get("code") == "gateway_refused"]
    assert refused, "the user never hears that the agent tried"
    assert any("GET /v1/files" in e["message"] for e in refused)
    after = await chat_sse(api, session_id, "hello again")
    assert after[-1]["type"] == "done"
    assert not [e for e in after if e["type"] == "error"], after


async def check_budget(api: Any, model: Any, session_id: str, what: str) -> None:
    """The agent's own model calls count: one crosses the budget, the rest get 429, and
    the CLI's next call in that turn is refused too."""
    model.add_scenarios([spender_scenario(SPEND)])
    events = await chat_sse(api, session_id, SPEND)
    result = probe_result(events)
    statuses = result["statuses"]
    assert statuses[0] == 200 and set(statuses[1:]) == {429}, statuses
    assert len(_probe_calls(model)) == 1  # the refused ones never went upstream
    errors = [e for e in events if e["type"] == "error"]
    assert errors and what in errors[-1]["message"], errors
    details = await api(f"agents/sessions/{session_id}")
    assert details["usage"]["total_tokens"] > 50_000  # the agent's call was metered
    assert details["metered_cost_usd"] > 0


async def test_the_key_is_lent_for_model_calls_only(
    api: Any, launched: Any, scripted_model: Any
) -> None:
    session = await launched("code-assistant")
    await check_gateway_probe(api, scripted_model, session["session_id"])


async def _launch_with(api: Any, launched: Any, **limits: Any) -> str:
    config = await api("configs/code-assistant")
    config = {**config, "id": "spender", **limits}
    return str((await launched(config=config))["session_id"])


async def test_the_token_budget_holds_for_the_agents_own_calls(
    api: Any, launched: Any, scripted_model: Any
) -> None:
    session_id = await _launch_with(api, launched, token_budget=60_000)
    await check_budget(api, scripted_model, session_id, "token budget of 60000 tokens")


async def test_the_dollar_budget_holds_for_the_agents_own_calls(
    api: Any, launched: Any, scripted_model: Any
) -> None:
    session_id = await _launch_with(api, launched, cost_budget_usd=0.25)
    await check_budget(api, scripted_model, session_id, "budget of $0.25 is spent")


async def test_a_pinned_model_refuses_the_agents_calls_to_others(
    api: Any, launched: Any, scripted_model: Any
) -> None:
    session_id = await _launch_with(api, launched, model="claude-sonnet-4-5")
    scripted_model.add_scenarios([spender_scenario(SPEND)])
    events = await chat_sse(api, session_id, SPEND)
    assert set(probe_result(events)["statuses"]) == {403}  # "claude-probe" is not its model
    assert _probe_calls(scripted_model) == []
    assert events[-1]["type"] == "done"
    assert not [e for e in events if e["type"] == "error" and e.get("code") != "gateway_refused"]
    cli = [r.body["model"] for r in scripted_model.message_requests]
    assert cli and set(cli) == {"claude-sonnet-4-5"}  # the CLI's own calls: its model
    log = await event_log(api, session_id)
    refused = [e["message"] for e in log if e.get("code") == "gateway_refused"]
    assert refused and "not allowed for this session" in refused[0]
