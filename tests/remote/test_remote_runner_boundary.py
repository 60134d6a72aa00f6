"""The agent cannot drive its own runner on ``provider=kubernetes`` and ``provider=fly``
(the fakes run each pod's or machine's real runner): the attack of
tests/integration/test_runner_boundary.py, plus a search of everything the tools can
read for the runner's token.  The runner is given only the token's digest, so neither
its environment, nor ``/proc``, nor any file holds the token itself."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from ..agent_probes import runner_attack_scenario
from ..integration.test_runner_boundary import ATTACK, assert_all_refused
from ..support import CAREFUL, chat_sse, event_log, wait_until
from .conftest import Remote

pytestmark = pytest.mark.cli


async def _permission(api: Any, sid: str, n: int) -> dict[str, Any]:
    async def nth() -> dict[str, Any] | None:
        found = [e for e in await event_log(api, sid) if e["type"] == "permission_request"]
        return found[n - 1] if len(found) >= n else None

    request: dict[str, Any] = await wait_until(nth, timeout=90.0, what=f"request {n}")
    return request


async def _file(api: Any, sid: str, path: str) -> Any:
    """The file's content (parsed when it is JSON), None when it is not there."""
    tree = await api(f"files/{sid}")
    if path not in [node["name"] for node in tree["tree"]]:
        return None
    return await api(f"files/{sid}/{path}", params={"raw": "1"})


async def test_the_agent_cannot_drive_a_remote_runner(
    api: Any, launched: Any, scripted_model: Any, agcluster_app: Any, remote: Remote
) -> None:
    scripted_model.add_scenarios([runner_attack_scenario(ATTACK)])
    sid = (await launched(config=CAREFUL))["session_id"]
    token = agcluster_app.manager.sessions[sid].control_token
    assert token
    turn = asyncio.ensure_future(chat_sse(api, sid, ATTACK))
    first = await _permission(api, sid, 1)
    await api(f"agents/{sid}/permissions/{first['request_id']}", method="POST",
              body={"decision": "allow"})  # fmt: skip
    second = await _permission(api, sid, 2)

    async def report() -> dict[str, Any] | None:
        data = await _file(api, sid, "attack.json")
        if isinstance(data, str):
            data = json.loads(data)
        return data if data and data.get("done") else None

    attack: dict[str, Any] = await wait_until(report, timeout=90.0, what="the attacker")
    # the next tool call still waits for the user
    log = await event_log(api, sid)
    assert not [e for e in log if e.get("tool_use_id") == second["request_id"]
                and e["type"] == "tool_result"]  # fmt: skip
    assert await _file(api, sid, "pwned.txt") is None
    await api(f"agents/{sid}/permissions/{second['request_id']}", method="POST",
              body={"decision": "deny"})  # fmt: skip
    events = await asyncio.wait_for(turn, 120)
    assert events[-1]["type"] == "done"

    assert_all_refused(attack["attempts"])
    # the token is in nothing the tools could read: environments, command lines
    assert token not in attack["tokens"]
    assert not [t for t in attack["tokens"] if token in t]
    details = await api(f"agents/sessions/{sid}")
    assert details["turns"] == 1 and details["state"] == "idle", details
    assert not [r for r in scripted_model.message_requests
                if "attacker-own-turn" in json.dumps(r.body)]  # fmt: skip
