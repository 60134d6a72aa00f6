"""``AgentWidget`` and ``WorkspaceBrowser`` as widget state, driven by events (no kernel)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agcluster_jupyter.events import Event, parse_event
from agcluster_jupyter.kernel.widgets import AgentWidget, flatten_tree, free_name
from agcluster_jupyter.kernel.widgets import agent as agent_module

SID = "0123456789abcdef"


def _events(*specs: dict[str, Any], start: int = 1) -> list[Event]:
    return [
        parse_event({"seq": i, "session_id": SID, "ts": f"2026-11-26T10:00:{i:02d}+00:00", **s})
        for i, s in enumerate(specs, start=start)
    ]


def _markdown(widget: AgentWidget) -> list[str]:
    # the Markdown is the plain text next to its sanitized HTML (never text/markdown)
    assert all("text/markdown" not in o["data"] for o in widget.chat.outputs)
    return [o["data"]["text/plain"] for o in widget.chat.outputs]


@pytest.fixture
def widget() -> AgentWidget:
    return AgentWidget(None, SID, title="code-assistant")


def test_chat_streams_markdown_and_header_counts(widget: AgentWidget) -> None:
    widget.extend(
        _events(
            {"type": "status", "state": "busy"},
            {"type": "message", "role": "user", "text": "hi"},
            {"type": "text_delta", "text": "**Hello**"},
        )
    )
    assert _markdown(widget) == ["**You:** hi", "**Hello** ▍"]
    assert "busy" in widget.header.value and not widget.interrupt_button.disabled
    widget.extend(
        _events(
            {"type": "message", "role": "assistant", "text": "**Hello** there"},
            {"type": "result", "cost_usd": 0.5, "session_usage": {"input_tokens": 1000,
                                                                 "output_tokens": 234}},
            {"type": "status", "state": "idle"},
            {"type": "done"},
            start=4,
        )
    )  # fmt: skip
    assert _markdown(widget) == ["**You:** hi", "**Hello** there"]
    assert "1,234 tokens (1,000 in, 234 out)" in widget.header.value
    assert "$0.5000" in widget.header.value and "1 turn" in widget.header.value
    assert widget.interrupt_button.disabled


def test_deltas_are_throttled_but_flush_shows_everything(
    widget: AgentWidget, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(agent_module, "_RENDER_INTERVAL", 3600.0)
    widget.apply(_events({"type": "text_delta", "text": "a"})[0])  # the first renders
    for event in _events({"type": "text_delta", "text": "b"}, {"type": "text_delta", "text": "c"},
                         start=2):  # fmt: skip
        assert widget.apply(event)
    assert widget.view.entries[0].text == "abc"
    widget.flush()
    assert _markdown(widget) == ["abc ▍"]


def test_duplicates_do_not_rerender(widget: AgentWidget) -> None:
    events = _events({"type": "message", "role": "user", "text": "once"})
    assert widget.apply(events[0]) and not widget.apply(events[0])
    widget.flush()
    assert _markdown(widget) == ["**You:** once"]


def test_tool_timeline_nests_sub_agent_calls(widget: AgentWidget) -> None:
    widget.extend(
        _events(
            {"type": "tool_use", "tool_use_id": "t1", "name": "Agent", "input": {}},
            {
                "type": "tool_use",
                "tool_use_id": "t2",
                "name": "Bash",
                "input": {"command": "ls"},
                "parent_tool_use_id": "t1",
            },
            {"type": "tool_result", "tool_use_id": "t2", "output": "<b>a.txt</b>"},
        )
    )
    top, child = widget._rows["t1"], widget._rows["t2"]
    # the Task's line over a box of its sub-agent's calls
    assert widget.timeline.children == (top.widget,)
    assert top.widget.children == (top.line, top.children_box)
    assert top.children_box is not None and top.children_box.children == (child.line,)
    assert "Agent" in top.head and "⏳" in top.head
    assert "✓" in child.head and "<code>ls</code>" in child.head and "1.0 s" in child.head
    # one collapsed <details> per call: the summary line, then input and output (escaped)
    assert child.line.value.startswith("<details><summary")
    assert "&lt;b&gt;a.txt&lt;/b&gt;" in child.details and child.details in child.line.value
    line = child.line
    widget.apply(_events({"type": "tool_result", "tool_use_id": "t1", "output": "x"}, start=4)[0])
    widget.flush()
    assert widget._rows["t2"].line is line  # drawn once, updated in place
    assert "✓" in top.head and "1 sub-agent calls" in top.head
    assert widget.tabs.titles[1] == "Tools (2)"


def test_a_long_history_replays_in_one_render(widget: AgentWidget) -> None:
    events: list[dict[str, Any]] = []
    for turn in range(50):
        events += [
            {"type": "message", "role": "user", "text": f"q{turn}"},
            {"type": "tool_use", "tool_use_id": f"t{turn}", "name": "Bash", "input": {}},
            {"type": "tool_result", "tool_use_id": f"t{turn}", "output": "ok"},
            {"type": "message", "role": "assistant", "text": f"a{turn}"},
            {"type": "done"},
        ]
    assert widget.extend(_events(*events)) == 250
    assert len(widget.chat.outputs) == 100 and len(widget.timeline.children) == 50


def test_tasks_tab(widget: AgentWidget) -> None:
    assert "No tasks yet" in widget.tasks.value
    widget.apply(
        _events(
            {
                "type": "todo_update",
                "todos": [
                    {"content": "Write <it>", "status": "completed"},
                    {"content": "Run it", "status": "in_progress", "activeForm": "Running it"},
                    {"content": "Report", "status": "pending"},
                ],
            }
        )[0]
    )
    widget.flush()
    value = widget.tasks.value
    assert "☑ <s>Write &lt;it&gt;</s>" in value and "◐ <b>Running it</b>" in value
    assert "☐ Report" in value
    assert widget.tabs.titles[2] == "Tasks (1/3)"


def test_permission_rows_come_and_go(widget: AgentWidget) -> None:
    widget.extend(
        _events(
            {"type": "tool_use", "tool_use_id": "t1", "name": "Bash", "input": {"command": "rm x"}},
            {"type": "permission_request", "request_id": "t1", "tool_name": "Bash",
             "input": {"command": "rm x"}},
        )
    )  # fmt: skip
    [row] = widget.permission_box.children
    assert row.request_id == "t1" and "<code>rm x</code>" in row.children[0].value
    # no server: the click says so, and the request is no longer offered here
    row.approve.click()
    assert "not connected" in widget.notice.value
    assert widget.permission_box.children == ()
    widget.interrupt()
    assert "not connected" in widget.notice.value


def test_send_needs_text(widget: AgentWidget) -> None:
    assert widget.send("   ") is None
    assert "type a message" in widget.notice.value


def test_mimebundle_has_the_live_view_and_a_static_snapshot(widget: AgentWidget) -> None:
    empty, metadata = widget.mimebundle()
    assert empty["text/plain"] == "*agent session code-assistant*"
    assert empty["text/html"] == "<p><em>agent session code-assistant</em></p>\n"
    assert metadata == {"agcluster": {"session_id": SID}}  # never signed (signing.py)
    widget.extend(_events({"type": "message", "role": "user", "text": "hi"},
                          {"type": "message", "role": "assistant", "text": "hello"}))  # fmt: skip
    bundle, _ = widget.mimebundle()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == widget.model_id
    assert "text/markdown" not in bundle  # a trusted output would render its raw HTML
    assert bundle["text/plain"] == "> hi\n\nhello"
    assert bundle["text/html"] == "<blockquote>\n<p>hi</p>\n</blockquote>\n<p>hello</p>\n"


def test_tree_flattening_and_download_names(tmp_path: Path) -> None:
    tree: list[dict[str, Any]] = [
        {"name": "a.py", "path": "a.py", "type": "file", "size_bytes": 3},
        {
            "name": "out",
            "path": "out",
            "type": "directory",
            "children": [{"name": "p.png", "path": "out/p.png", "type": "file", "size_bytes": 9}],
        },
    ]
    assert flatten_tree(tree) == [("a.py", 3), ("out/p.png", 9)]
    assert free_name(tmp_path, "r.csv") == tmp_path / "r.csv"
    (tmp_path / "r.csv").touch()
    (tmp_path / "r (2).csv").touch()
    assert free_name(tmp_path, "r.csv") == tmp_path / "r (3).csv"


def test_what_throttling_held_back_is_drawn_by_itself(widget: AgentWidget) -> None:
    import time

    for event in _events({"type": "text_delta", "text": "a"}, {"type": "text_delta", "text": "b"}):
        widget.apply(event)  # the second comes within the interval: held back
    deadline = time.monotonic() + 5
    while _markdown(widget) != ["ab ▍"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _markdown(widget) == ["ab ▍"]  # no flush() and no further event needed
