"""An agent at work is the Jupyter server's activity: ``web_app.last_activity()`` (what
jupyterhub-singleuser reports to the hub, and its idle culler reads) keeps advancing while
a turn runs, even through a long silent tool call, and stops when the agent is idle."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

import pytest

from ..support import bash_scenario, chat_sse

pytestmark = pytest.mark.cli


@pytest.fixture
def agcluster_config() -> dict[str, Any]:
    return {"activity_interval": 0.2}


def _agent_activity(serverapp: Any) -> datetime | None:
    value: datetime | None = serverapp.web_app.settings.get("agcluster_last_activity")
    return value


async def test_a_busy_agent_keeps_the_server_active(
    jp_serverapp: Any, api: Any, launched: Any, scripted_model: Any
) -> None:
    scripted_model.add_scenarios(
        [bash_scenario("quiet job", "python3 -c 'import time; time.sleep(4)'")]
    )
    session = await launched("code-assistant")
    turn = asyncio.ensure_future(chat_sse(api, session["session_id"], "run the quiet job"))
    deadline = time.monotonic() + 30
    while (await api(f"agents/sessions/{session['session_id']}"))["state"] != "busy":
        assert time.monotonic() < deadline, "the turn never started"
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)  # into the silent tool call: no events, no requests
    first = _agent_activity(jp_serverapp)
    await asyncio.sleep(1.5)
    second = _agent_activity(jp_serverapp)
    assert first is not None and second is not None
    assert (second - first).total_seconds() >= 1.0, (first, second)
    assert jp_serverapp.web_app.last_activity() >= second  # the server's own answer

    events = await turn
    assert events[-1]["type"] == "done"
    await asyncio.sleep(0.5)
    idle = _agent_activity(jp_serverapp)
    await asyncio.sleep(1.0)
    assert _agent_activity(jp_serverapp) == idle, "an idle agent still counted as activity"
