"""``SessionView``: widget state folded from event sequences, replays and duplicates."""

from __future__ import annotations

from typing import Any

from agcluster_jupyter.events import Event, MessageEvent, parse_event
from agcluster_jupyter.kernel.widgets import SessionView, summarize_input

SID = "s1"


def _events(*specs: dict[str, Any]) -> list[Event]:
    """Events stamped as the session log would: seq from 1, ts one second apart."""
    return [
        parse_event({"seq": i, "session_id": SID, "ts": f"2026-11-26T10:00:{i:02d}+00:00", **spec})
        for i, spec in enumerate(specs, start=1)
    ]


def _status(view: SessionView, tool_use_id: str) -> str:
    """A call's status read afresh: the type checker would keep an earlier comparison's
    narrowing across the method call that changes it."""
    return view.calls[tool_use_id].status


def _turn() -> list[Event]:
    return _events(
        {"type": "status", "state": "busy"},
        {"type": "message", "role": "user", "text": "analyse it"},
        {"type": "text_delta", "text": "Let me "},
        {"type": "text_delta", "text": "look."},
        {"type": "message", "role": "assistant", "text": "Let me look."},
        {"type": "tool_use", "tool_use_id": "t1", "name": "Agent", "input": {"description": "dig"}},
        {
            "type": "tool_use",
            "tool_use_id": "t2",
            "name": "Bash",
            "input": {"command": "ls -la"},
            "parent_tool_use_id": "t1",
        },
        {"type": "tool_result", "tool_use_id": "t2", "output": "a.txt", "parent_tool_use_id": "t1"},
        {"type": "message", "role": "assistant", "text": "found a.txt", "parent_tool_use_id": "t1"},
        {"type": "tool_result", "tool_use_id": "t1", "output": "sub-agent says: a.txt"},
        {
            "type": "todo_update",
            "todos": [
                {"content": "Look", "status": "completed", "activeForm": "Looking"},
                {"content": "Report", "status": "in_progress", "activeForm": "Reporting"},
            ],
        },
        {"type": "text_delta", "text": "Done"},
        {"type": "message", "role": "assistant", "text": "Done."},
        {
            "type": "result",
            "cost_usd": 0.0125,
            "usage": {"input_tokens": 10, "output_tokens": 5},
            "num_turns": 2,
            "session_usage": {"input_tokens": 1200, "output_tokens": 300, "total_tokens": 1500},
        },
        {"type": "status", "state": "idle"},
        {"type": "done"},
    )


def _snapshot(view: SessionView) -> tuple[Any, ...]:
    return (
        view.last_seq,
        [(e.role, e.text, e.streaming) for e in view.entries],
        [(c.tool_use_id, c.status, [k.tool_use_id for k in c.children]) for c in view.timeline],
        [(t.content, t.status) for t in view.todos],
        view.tokens,
        view.cost_usd,
        view.turns,
        view.state,
        view.busy,
    )


def test_a_turn_becomes_chat_timeline_tasks_and_usage() -> None:
    view = SessionView(SID)
    assert view.extend(_turn()) == 16
    assert [(e.role, e.text) for e in view.entries] == [
        ("user", "analyse it"),
        ("assistant", "Let me look."),
        ("assistant", "Done."),
    ]
    assert not any(e.streaming for e in view.entries)
    # the sub-agent's Bash call sits under its Agent (Task) call, not at the top
    [agent] = view.timeline
    assert agent.name == "Agent" and agent.status == "ok"
    assert [c.tool_use_id for c in agent.children] == ["t2"]
    assert agent.children[0].output == "a.txt" and agent.children[0].summary == "ls -la"
    assert agent.notes == ["found a.txt"]
    assert agent.duration_s == 4.0  # tool_use at :06, its result at :10 (server clock)
    assert [(t.content, t.status) for t in view.todos] == [
        ("Look", "completed"),
        ("Report", "in_progress"),
    ]
    assert view.tasks_done == 1
    # the gateway's meter is the session's count (sub-agents included), not the turn's usage
    assert (view.input_tokens, view.output_tokens, view.tokens) == (1200, 300, 1500)
    assert view.cost_usd == 0.0125 and view.turns == 1
    assert view.state == "idle" and not view.busy


def test_text_streams_into_one_open_entry_until_its_message() -> None:
    view = SessionView(SID)
    view.extend(_turn()[:4])
    [user, open_entry] = view.entries
    assert open_entry.streaming and open_entry.text == "Let me look."
    assert view.busy


def test_duplicates_and_replays_change_nothing() -> None:
    events = _turn()
    live = SessionView(SID)
    live.extend(events)
    before = _snapshot(live)
    # the same events again (a second stream, a replay from 0) are all ignored
    assert live.extend(events) == 0
    assert not live.apply(events[5])
    assert _snapshot(live) == before
    # a reconnect that overlaps: events 1-9, then 5-16
    resumed = SessionView(SID)
    resumed.extend(events[:9])
    assert resumed.extend(events[4:]) == 7
    assert _snapshot(resumed) == before


def test_replaying_the_log_rebuilds_the_same_state_as_the_live_stream() -> None:
    # what a widget re-attaching after a kernel restart sees: the whole log at once
    events = _turn() + [
        e.model_copy(update={"seq": e.seq + 16}) for e in _turn() if e.type != "todo_update"
    ]
    live, replayed = SessionView(SID), SessionView(SID)
    for event in events:
        live.apply(event)
    replayed.extend(list(events))
    assert _snapshot(live) == _snapshot(replayed)
    assert replayed.turns == 2 and replayed.last_seq == 32
    assert len([e for e in replayed.entries if e.role == "user"]) == 2


def test_without_deltas_a_message_is_a_whole_entry() -> None:
    view = SessionView(SID)
    view.extend(_events({"type": "message", "role": "assistant", "text": "whole"}))
    assert [(e.text, e.streaming) for e in view.entries] == [("whole", False)]


def test_permission_request_waits_until_answered_or_resulted() -> None:
    view = SessionView(SID)
    view.extend(
        _events(
            {"type": "tool_use", "tool_use_id": "t1", "name": "Bash", "input": {"command": "rm x"}},
            {"type": "permission_request", "request_id": "t1", "tool_name": "Bash",
             "input": {"command": "rm x"}},
        )
    )  # fmt: skip
    assert list(view.permissions) == ["t1"]
    assert _status(view, "t1") == "waiting"
    assert view.permissions["t1"].summary == "rm x"
    view.answered("t1")
    assert not view.permissions and _status(view, "t1") == "running"

    # answered elsewhere (the panel, another widget): the tool's result clears it
    other = SessionView(SID)
    other.extend(
        _events(
            {"type": "permission_request", "request_id": "p9", "tool_name": "Write", "input": {}},
            {"type": "tool_use", "tool_use_id": "p9", "name": "Write", "input": {}},
            {"type": "tool_result", "tool_use_id": "p9", "is_error": True, "output": "denied"},
        )
    )
    assert not other.permissions and other.calls["p9"].status == "error"


def test_a_turn_cut_off_leaves_no_spinner_and_no_stale_request() -> None:
    view = SessionView(SID)
    view.extend(
        _events(
            {"type": "status", "state": "busy"},
            {"type": "text_delta", "text": "work"},
            {"type": "tool_use", "tool_use_id": "t1", "name": "Bash", "input": {"command": "x"}},
            {"type": "permission_request", "request_id": "t1", "tool_name": "Bash", "input": {}},
            {"type": "error", "message": "the agent was interrupted", "code": "interrupted"},
            {"type": "done"},
        )
    )
    assert view.calls["t1"].status == "interrupted" and view.calls["t1"].duration_s is None
    assert not view.permissions and not view.busy
    assert view.entries[-1].role == "error"
    assert view.entries[-1].text == "the agent was interrupted"  # its code adds nothing
    assert not any(e.streaming for e in view.entries)


def test_a_failed_session_ends_its_running_calls() -> None:
    view = SessionView(SID)
    view.extend(
        _events(
            {"type": "tool_use", "tool_use_id": "t1", "name": "Bash", "input": {}},
            {"type": "status", "state": "failed", "detail": "container died"},
        )
    )
    assert view.calls["t1"].status == "interrupted"
    assert (view.state, view.detail) == ("failed", "container died")


def test_usage_without_the_gateway_meter_adds_up_turn_usage() -> None:
    view = SessionView(SID)
    usage = {"input_tokens": 10, "cache_read_input_tokens": 90, "output_tokens": 7}
    view.extend(_events({"type": "result", "usage": usage}, {"type": "result", "usage": usage}))
    assert (view.input_tokens, view.output_tokens) == (200, 14)
    assert view.cost_usd == 0.0


def test_markdown_snapshot() -> None:
    view = SessionView(SID)
    view.extend(_turn())
    idle: dict[str, Any] = {"type": "status", "state": "idle"}
    view.extend(_events(*[idle] * 16, {"type": "error", "message": "boom"}))
    assert view.markdown() == "> analyse it\n\nLet me look.\n\nDone.\n\n**Error:** boom"


def test_input_summary() -> None:
    assert summarize_input({"command": "ls   -la\n  /tmp"}) == "ls -la /tmp"
    assert summarize_input({"file_path": "/w/a.py", "content": "x"}) == "/w/a.py"
    assert summarize_input({"a": 1}) == '{"a": 1}'
    assert summarize_input({}) == ""
    long = summarize_input({"command": "x" * 200})
    assert len(long) == 80 and long.endswith("…")


def test_paths_are_shown_relative_to_the_workspace() -> None:
    assert summarize_input({"file_path": "/workspace/src/a.py"}) == "src/a.py"
    host = "/srv/ws/0123-abcd/notes.md"
    assert summarize_input({"file_path": host}, session_id="0123-abcd") == "notes.md"
    assert summarize_input({"file_path": "/etc/passwd"}, session_id="0123-abcd") == "/etc/passwd"
    view = SessionView("0123-abcd")
    view.extend(
        [
            parse_event(
                {
                    "seq": 1,
                    "session_id": "0123-abcd",
                    "type": "tool_use",
                    "tool_use_id": "t",
                    "name": "Write",
                    "input": {"file_path": host},
                }
            )
        ]
    )
    assert view.calls["t"].summary == "notes.md"


def test_error_text_adds_the_code_only_when_it_says_more() -> None:
    from agcluster_jupyter.kernel.widgets.state import error_text

    assert error_text("boom", "error") == "boom"
    assert error_text("the turn was interrupted", "interrupted") == "the turn was interrupted"
    assert error_text("over the storage limit", "storage_limit") == "over the storage limit"
    assert error_text("the model said no", "rate_limit") == "the model said no (rate_limit)"


def test_a_prompt_shown_before_it_is_logged_appears_once() -> None:
    view = SessionView("s")
    view.apply(MessageEvent(role="user", text="hello"))  # the cell shows it at once
    view.apply(MessageEvent(seq=1, session_id="s", role="user", text="hello"))
    view.apply(MessageEvent(seq=2, session_id="s", role="user", text="again"))
    assert [(e.role, e.text) for e in view.entries] == [("user", "hello"), ("user", "again")]
