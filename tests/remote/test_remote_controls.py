"""Approvals and interrupts on ``provider=kubernetes`` and ``provider=fly``: the same
controls as a local or Docker session, through the remote runner's channel."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ..support import CAREFUL, bash_scenario, chat_sse, event_log, expect_error, wait_until
from .conftest import Remote

pytestmark = pytest.mark.cli


async def _last_event(api: Any, sid: str, kind: str) -> dict[str, Any]:
    """The session's latest event of type ``kind``, once there is one."""

    async def latest() -> dict[str, Any] | None:
        found = [e for e in await event_log(api, sid) if e["type"] == kind]
        return found[-1] if found else None

    event: dict[str, Any] = await wait_until(latest, timeout=60.0, what=f"a {kind} event")
    return event


async def test_a_remote_tool_call_waits_for_approval(
    api: Any, launched: Any, scripted_model: Any, remote: Remote
) -> None:
    scripted_model.add_scenarios([bash_scenario("mark it", "echo approved > marker.txt")])
    sid = (await launched(config=CAREFUL))["session_id"]
    turn = asyncio.ensure_future(chat_sse(api, sid, "mark it please"))
    request = await _last_event(api, sid, "permission_request")
    assert request["tool_name"] == "Bash"
    await expect_error(api(f"files/{sid}/marker.txt"), 404)  # nothing ran yet
    await api(
        f"agents/{sid}/permissions/{request['request_id']}",
        method="POST",
        body={"decision": "allow"},
    )
    events = await asyncio.wait_for(turn, 120)
    assert events[-1]["type"] == "done"
    assert (await api(f"files/{sid}/marker.txt"))["content"] == "approved\n"


async def test_a_remote_turn_can_be_interrupted(
    api: Any, launched: Any, scripted_model: Any, remote: Remote
) -> None:
    scripted_model.add_scenarios([bash_scenario("sleep long", "sleep 60")])
    sid = (await launched("code-assistant"))["session_id"]
    turn = asyncio.ensure_future(chat_sse(api, sid, "sleep long please"))
    await _last_event(api, sid, "tool_use")
    reply = await api(f"agents/{sid}/interrupt", method="POST", body={})
    assert reply["interrupted"] is True
    # the turn ends well before the tool's 60 s would have
    events = await asyncio.wait_for(turn, 30)
    assert events[-1]["type"] == "done"
    # the session takes the next message
    assert (await chat_sse(api, sid, "hello"))[-1]["type"] == "done"
