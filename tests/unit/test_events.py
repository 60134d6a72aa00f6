"""Event models, SSE framing, the event log and the session state machine."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from agcluster_jupyter.events import (
    SESSION_STATES,
    DoneEvent,
    ErrorEvent,
    Event,
    MessageEvent,
    PermissionRequestEvent,
    ResultEvent,
    StatusEvent,
    TextDeltaEvent,
    ThinkingEvent,
    TodoUpdateEvent,
    ToolResultEvent,
    ToolUseEvent,
    format_sse,
    parse_event,
)
from agcluster_jupyter.sessions.eventlog import EventLog
from agcluster_jupyter.sessions.state import TRANSITIONS, can_transition

ONE_OF_EACH: list[Event] = [
    StatusEvent(state="busy", detail="x"),
    TextDeltaEvent(text="he"),
    MessageEvent(role="assistant", text="hello"),
    ThinkingEvent(text="hmm"),
    ToolUseEvent(tool_use_id="t1", name="Bash", input={"command": "ls"}, parent_tool_use_id="p"),
    ToolResultEvent(tool_use_id="t1", output="a\nb", is_error=False),
    TodoUpdateEvent.model_validate(
        {"todos": [{"content": "x", "status": "in_progress", "activeForm": "Doing x"}]}
    ),
    PermissionRequestEvent(request_id="r1", tool_name="Bash", input={"command": "rm -rf /"}),
    ResultEvent(cost_usd=0.01, usage={"input_tokens": 3}, duration_ms=5, num_turns=1),
    ErrorEvent(message="boom", code="api_error_500"),
    DoneEvent(),
]


@pytest.mark.parametrize("event", ONE_OF_EACH, ids=lambda e: e.type)
def test_every_event_round_trips_through_json(event: Event) -> None:
    data = event.model_dump(mode="json")
    assert parse_event(json.dumps(data)) == event
    assert parse_event(data) == event


def test_every_design_type_has_a_model() -> None:
    assert {e.type for e in ONE_OF_EACH} == {
        "status",
        "text_delta",
        "message",
        "thinking",
        "tool_use",
        "tool_result",
        "todo_update",
        "permission_request",
        "result",
        "error",
        "done",
    }


@pytest.mark.parametrize(
    "bad",
    [
        {"type": "nope"},
        {"type": "status", "state": "sleeping"},
        {"type": "text_delta"},
        {"type": "done", "surprise": 1},
        {"type": "todo_update", "todos": [{"content": "x", "status": "maybe"}]},
    ],
)
def test_malformed_events_are_rejected(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        parse_event(bad)


def test_sse_framing_has_id_event_and_one_data_line() -> None:
    event = MessageEvent(text="line one\nline two", seq=7, session_id="s", ts="t")
    frame = format_sse(event).decode()
    assert frame.endswith("\n\n")
    lines = frame.rstrip("\n").split("\n")
    assert lines[0] == "id: 7" and lines[1] == "event: message"
    assert len(lines) == 3 and lines[2].startswith("data: ")
    assert json.loads(lines[2][6:])["text"] == "line one\nline two"


async def test_log_stamps_gapless_seq_and_persists(tmp_path: Path) -> None:
    log = EventLog("sess", tmp_path / "events.jsonl")
    log.use_runner("r1")
    for i in range(5):
        log.append(TextDeltaEvent(text=str(i)), rseq=i + 1)
    log.append(DoneEvent())
    assert [e.seq for e in log.all()] == [1, 2, 3, 4, 5, 6]
    assert all(e.session_id == "sess" and e.ts for e in log.all())
    log.close()
    again = EventLog("sess", tmp_path / "events.jsonl")
    again.load()
    assert again.all() == log.all()
    again.use_runner("r1")
    assert again.last_rseq == 5
    again.use_runner("r2")  # a relaunched runner numbers from 1 again
    assert again.last_rseq == 0
    again.close()


async def test_log_drops_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    log = EventLog("s", path)
    log.append(StatusEvent(state="starting"))
    log.append(StatusEvent(state="ready"))
    log.close()
    with path.open("a") as fh:
        fh.write('{"seq": 3, "type": "text_de')  # the server died mid-write
    again = EventLog("s", path)
    again.load()
    assert [e.seq for e in again.all()] == [1, 2]
    again.append(DoneEvent())
    assert again.last_seq == 3
    again.close()
    third = EventLog("s", path)
    third.load()  # the torn fragment stays dropped and the new event reads back
    assert [e.type for e in third.all()] == ["status", "status", "done"]


async def test_followers_each_get_every_event_once_in_order() -> None:
    log = EventLog("s")
    log.append(StatusEvent(state="starting"))

    async def follow(after: int) -> list[int]:
        seen = []
        async for event in log.follow(after):
            seen.append(event.seq)
            if event.type == "done":
                return seen
        return seen

    followers = [asyncio.ensure_future(follow(after)) for after in (0, 0, 1)]
    await asyncio.sleep(0)
    for i in range(50):
        log.append(TextDeltaEvent(text=str(i)))
        if i % 7 == 0:
            await asyncio.sleep(0)
    log.append(DoneEvent())
    results = await asyncio.wait_for(asyncio.gather(*followers), 5)
    assert results[0] == results[1] == list(range(1, 53))
    assert results[2] == list(range(2, 53))


async def test_closing_the_log_ends_followers() -> None:
    log = EventLog("s")
    task = asyncio.ensure_future(_drain(log))
    await asyncio.sleep(0.01)
    log.close()
    assert await asyncio.wait_for(task, 1) == 0


async def _drain(log: EventLog) -> int:
    return len([e async for e in log.follow(0)])


def test_state_machine_matches_the_design() -> None:
    assert set(TRANSITIONS) == set(SESSION_STATES)
    assert can_transition("starting", "ready")
    assert can_transition("idle", "busy") and can_transition("busy", "idle")
    assert can_transition("stopped", "starting")  # a relaunch resumes
    assert not can_transition("stopped", "busy")
    assert not can_transition("busy", "ready")
    for state in SESSION_STATES:
        if state not in {"stopped", "stopping"}:
            assert can_transition(state, "failed") or state == "failed"
