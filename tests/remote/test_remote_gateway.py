"""The gateway's TCP listener, the one remote runners share (kubernetes, fly), seen from
inside a remote session: the same least-privilege checks as on the unix socket (see
tests/integration/test_gateway_from_the_agent.py)."""

from __future__ import annotations

from typing import Any

import pytest

from ..integration.test_gateway_from_the_agent import check_budget, check_gateway_probe
from .conftest import Remote

pytestmark = pytest.mark.cli


async def test_the_key_is_lent_for_model_calls_only(
    api: Any, launched: Any, scripted_model: Any, remote: Remote
) -> None:
    session = await launched("code-assistant")
    await check_gateway_probe(api, scripted_model, session["session_id"])


async def test_the_token_budget_holds_for_the_agents_own_calls(
    api: Any, launched: Any, scripted_model: Any, remote: Remote
) -> None:
    config = {**await api("configs/code-assistant"), "id": "spender", "token_budget": 60_000}
    session_id = (await launched(config=config))["session_id"]
    await check_budget(api, scripted_model, session_id, "token budget of 60000 tokens")
