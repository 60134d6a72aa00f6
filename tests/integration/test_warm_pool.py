"""The warm pool: a launch of the pooled preset claims a started session."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ..support import TEST_KEY, parse_sse

pytestmark = pytest.mark.cli


@pytest.fixture
def agcluster_config() -> dict[str, Any]:
    return {"warm_pool_size": 1, "warm_pool_config": "code-assistant"}


async def pool_available(api: Any, want: int, timeout: float = 60) -> dict[str, Any]:
    for _ in range(int(timeout * 10)):
        health = await api("health")
        if health["warm_pool"]["available"] >= want:
            return health
        await asyncio.sleep(0.1)
    pytest.fail(f"the warm pool never had {want} session(s) ready")


@pytest.mark.no_server_key
async def test_a_launch_claims_the_pooled_session_and_the_pool_refills(
    api: Any, launched: Any
) -> None:
    health = await pool_available(api, 1)
    assert health["warm_pool"] == {"config_id": "code-assistant", "size": 1, "available": 1}
    assert (await api("agents/sessions"))["total"] == 0  # pooled sessions are invisible

    session = await launched("code-assistant", api_key=TEST_KEY, name="claimed")
    assert session["status"] == "ready"
    sid = session["session_id"]
    events = parse_sse(await api(f"agents/{sid}/events", params={"follow": "false"}))
    # started before the launch: the runner was already up
    assert [e["state"] for e in events if e["type"] == "status"][:2] == ["starting", "ready"]
    details = await api(f"agents/sessions/{sid}")
    assert details["name"] == "claimed"

    # the launch's key (the server has none) reaches the gateway at claim time
    text = await api(
        f"agents/{sid}/chat",
        method="POST",
        body={"message": "hello"},
        headers={"Accept": "text/event-stream"},
        request_timeout=60,
    )
    turn = parse_sse(text)
    assert turn[-1]["type"] == "done"
    assert not [e for e in turn if e["type"] == "error"], turn
    assert "scripted demo model" in "".join(e["text"] for e in turn if e["type"] == "text_delta")

    await pool_available(api, 1)  # refilled in the background
    assert (await api("agents/sessions"))["total"] == 1


@pytest.mark.no_server_key
async def test_other_configs_start_cold(api: Any, launched: Any) -> None:
    await pool_available(api, 1)
    session = await launched("research-agent", api_key=TEST_KEY)
    assert session["config_id"] == "research-agent"
    health = await api("health")
    assert health["warm_pool"]["available"] == 1  # untouched
