"""``permission_timeout``: a permission request nobody answers is denied after it, the
log says it was the timeout (``permission_answer``, answered_by ``timeout``), and the
chat shows it; without the setting a request waits."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from agcluster_jupyter.events import parse_event
from agcluster_jupyter.kernel.widgets import SessionView

from ..support import CAREFUL, bash_scenario, chat_sse, event_log

pytestmark = pytest.mark.cli


@pytest.fixture
def agcluster_config() -> dict[str, Any]:
    return {"permission_timeout": 2.0}


async def test_an_unanswered_request_is_denied_after_the_timeout(
    api: Any, launched: Any, scripted_model: Any
) -> None:
    scripted_model.add_scenarios([bash_scenario("make marker", "echo yes > marker.txt")])
    session = await launched(config=CAREFUL)
    sid = session["session_id"]
    started = time.monotonic()
    events = await asyncio.wait_for(chat_sse(api, sid, "make marker please"), 90)
    waited = time.monotonic() - started
    assert events[-1]["type"] == "done"
    assert not (Path(session["workspace"]) / "marker.txt").exists()
    (request,) = [e for e in events if e["type"] == "permission_request"]
    log = await event_log(api, sid)
    (answer,) = [e for e in log if e["type"] == "permission_answer"]
    assert answer["request_id"] == request["request_id"]
    assert (answer["decision"], answer["answered_by"], answer["reason"]) == (
        "deny",
        "timeout",
        "timeout",
    )
    assert "nobody answered within 2 s" in answer["message"]
    assert waited >= 2.0
    (result,) = [e for e in log if e["type"] == "tool_result"]
    assert result["is_error"]  # the tool did not run
    # the user sees which: the chat says the request timed out
    view = SessionView(sid)
    view.extend([parse_event(e) for e in log])
    assert any(e.role == "error" and "nobody answered" in e.text for e in view.entries)
    assert view.permissions == {}
