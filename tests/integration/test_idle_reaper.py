"""The idle reaper: reads do not keep a session alive, a running turn does."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from ..support import bash_scenario, parse_sse

pytestmark = pytest.mark.cli

IDLE = 3.0


@pytest.fixture
def agcluster_config() -> dict[str, Any]:
    return {"idle_timeout": IDLE, "cleanup_interval": 0.25}


async def wait_state(api: Any, sid: str, state: str, timeout: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if (await api(f"agents/sessions/{sid}"))["state"] == state:
            return time.monotonic() - start
        await asyncio.sleep(0.1)
    pytest.fail(f"session never became {state}")


async def test_reads_do_not_count_as_activity(api: Any, launched: Any) -> None:
    session = await launched("code-assistant")
    sid = session["session_id"]
    (Path(session["workspace"]) / "notes.txt").write_text("hello")
    start = time.monotonic()
    # read as a busy UI would: list, details, tree, preview, ZIP
    while time.monotonic() - start < IDLE + 4:
        details = await api(f"agents/sessions/{sid}")
        if details["state"] == "stopped":
            break
        await api("agents/sessions")
        await api(f"files/{sid}")
        await api(f"files/{sid}/notes.txt")
        await asyncio.sleep(0.2)
    details = await api(f"agents/sessions/{sid}")
    assert details["state"] == "stopped", "reads kept the session alive"
    assert "idle" in details["state_detail"]
    assert Path(session["workspace"], "notes.txt").read_text() == "hello"


async def test_a_running_turn_is_activity(api: Any, launched: Any, scripted_model: Any) -> None:
    scripted_model.add_scenarios(
        [bash_scenario("long job", "python3 -c 'import time; time.sleep(6)'")]
    )
    session = await launched("code-assistant")
    sid = session["session_id"]
    text = await api(
        f"agents/{sid}/chat",
        method="POST",
        body={"message": "run the long job"},
        headers={"Accept": "text/event-stream"},
        request_timeout=60,
    )
    events = parse_sse(text)
    assert events[-1]["type"] == "done"
    assert not any(e["type"] == "error" for e in events), events
    assert not any(e["type"] == "status" and e["state"] == "stopping" for e in events)
    # once the turn is over the clock runs again: the stop comes idle_timeout after done
    await wait_state(api, sid, "stopped", IDLE + 10)
    log = parse_sse(await api(f"agents/{sid}/events", params={"follow": "false"}))
    done_at = next(e["ts"] for e in reversed(log) if e["type"] == "done")
    stopping_at = next(e["ts"] for e in log if e["type"] == "status" and e["state"] == "stopping")
    idle_for = datetime.fromisoformat(stopping_at) - datetime.fromisoformat(done_at)
    assert idle_for.total_seconds() >= IDLE - 0.5
