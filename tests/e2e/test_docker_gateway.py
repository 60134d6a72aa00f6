"""The gateway from inside a real container (docker provider): the agent's Bash reaches
the gateway's unix socket through the runner's forwarder, with the session token, and
gets the key lent for model calls only (see tests/integration/test_gateway_from_the_agent.py
for the checks)."""

from __future__ import annotations

from typing import Any

import pytest

from ..integration.test_gateway_from_the_agent import check_budget, check_gateway_probe

pytestmark = [pytest.mark.docker, pytest.mark.cli]


@pytest.fixture
def agcluster_config(docker_config: dict[str, Any]) -> dict[str, Any]:
    return docker_config


async def test_the_key_is_lent_for_model_calls_only(
    api: Any, launched: Any, scripted_model: Any
) -> None:
    session = await launched("code-assistant")
    assert session["isolated"] is True
    await check_gateway_probe(api, scripted_model, session["session_id"])


async def test_the_dollar_budget_holds_for_the_agents_own_calls(
    api: Any, launched: Any, scripted_model: Any
) -> None:
    config = {**await api("configs/code-assistant"), "id": "spender", "cost_budget_usd": 0.25}
    session_id = (await launched(config=config))["session_id"]
    await check_budget(api, scripted_model, session_id, "budget of $0.25 is spent")
