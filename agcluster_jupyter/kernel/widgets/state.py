"""What a session looks like after a run of events: the model behind every widget.

``SessionView.apply(event)`` folds one event into plain data (chat entries, the tool
timeline with sub-agent calls nested under their Task, the task list, waiting permission
requests, tokens and cost).  It ignores an event it has already seen (``seq`` at or below
the last one applied), so a replayed log, a reconnect that overlaps, or the same event from
two streams change nothing.  No widget code here: the widgets render this, and the tests
drive it with event sequences.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from ...events import Event, TodoItem

__all__ = [
    "ChatEntry",
    "PendingPermission",
    "SessionView",
    "ToolCall",
    "ToolStatus",
    "error_text",
    "summarize_input",
    "workspace_path",
]

ToolStatus = Literal["running", "waiting", "ok", "error", "interrupted"]
#: a timed-out permission request without a message of its own (reducer.ts: the same)
DENIED_IN_TIME = "denied: nobody answered in time"

#: the input field that says most about a call, per tool (first present wins)
_SUBJECT_KEYS = (
    "command",
    "file_path",
    "notebook_path",
    "path",
    "pattern",
    "url",
    "query",
    "description",
    "subject",
    "prompt",
)


_PATH_KEYS = ("file_path", "notebook_path", "path")


def workspace_path(path: str, session_id: str = "") -> str:
    """``path`` as the user sees it: relative to the session's workspace when inside it
    (``/workspace/...`` in a container, ``.../<session id>/...`` on the host)."""
    for marker in (f"/{session_id}/" if session_id else None, "/workspace/"):
        if marker and marker in path:
            return path.split(marker, 1)[1] or "."
    return path


def summarize_input(tool_input: dict[str, Any], limit: int = 80, session_id: str = "") -> str:
    """One line that says what a call does: its command, file, pattern, ... or its JSON."""
    for key in _SUBJECT_KEYS:
        value = tool_input.get(key)
        if isinstance(value, str) and value.strip():
            text = " ".join(value.split())
            if key in _PATH_KEYS:
                text = workspace_path(text, session_id)
            break
    else:
        text = json.dumps(tool_input, ensure_ascii=False, sort_keys=True) if tool_input else ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def error_text(message: str, code: str | None) -> str:
    """An error for the chat: the message, with its code when that adds something."""
    if not code or code == "error" or code.replace("_", " ") in message.lower():
        return message
    return f"{message} ({code})"


def _seconds_between(start: str, end: str) -> float | None:
    try:
        return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    except ValueError:
        return None


@dataclass
class ToolCall:
    """One tool call of the timeline; a Task/Agent call holds its sub-agent's calls."""

    tool_use_id: str
    name: str
    input: dict[str, Any]
    parent_tool_use_id: str | None = None
    status: ToolStatus = "running"
    started: str = ""
    ended: str = ""
    output: str = ""
    children: list[ToolCall] = field(default_factory=list)
    #: the sub-agent's own text, for Task/Agent calls
    notes: list[str] = field(default_factory=list)

    #: the session it ran in: workspace paths are shown relative to it
    session_id: str = ""

    @property
    def summary(self) -> str:
        return summarize_input(self.input, session_id=self.session_id)

    @property
    def duration_s(self) -> float | None:
        """Seconds from the call to its result (server clock); None while running."""
        if not self.started or not self.ended:
            return None
        return _seconds_between(self.started, self.ended)


@dataclass
class ChatEntry:
    """One bubble of the chat: the user's prompt, an assistant text block, or an error."""

    role: Literal["user", "assistant", "error"]
    text: str
    #: still receiving ``text_delta`` pieces
    streaming: bool = False
    #: a prompt shown before the server logged it (an event without a seq); the logged
    #: one takes its place
    shown_early: bool = False


@dataclass(frozen=True)
class PendingPermission:
    request_id: str
    tool_name: str
    input: dict[str, Any]

    @property
    def summary(self) -> str:
        return summarize_input(self.input, limit=200)


class SessionView:
    """The state of one session's conversation, built from its events."""

    def __init__(self, session_id: str = "") -> None:
        self.session_id = session_id
        self.state = "starting"
        self.detail = ""
        self.last_seq = 0
        self.entries: list[ChatEntry] = []
        self.calls: dict[str, ToolCall] = {}
        #: top-level calls in order; sub-agent calls sit in their parent's ``children``
        self.timeline: list[ToolCall] = []
        self.todos: list[TodoItem] = []
        self.permissions: dict[str, PendingPermission] = {}
        self.turns = 0
        self.busy = False
        self.cost_usd = 0.0
        self.input_tokens = 0
        self.output_tokens = 0
        self._open: ChatEntry | None = None  # the assistant block being streamed

    # -- reading ---------------------------------------------------------------------------

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def tasks_done(self) -> int:
        return sum(1 for t in self.todos if t.status == "completed")

    def running_calls(self) -> list[ToolCall]:
        return [c for c in self.calls.values() if c.status in ("running", "waiting")]

    def markdown(self) -> str:
        """The conversation as Markdown: what a static renderer shows for the widget."""
        parts: list[str] = []
        for entry in self.entries:
            if entry.role == "user":
                parts.append("> " + entry.text.replace("\n", "\n> "))
            elif entry.role == "error":
                parts.append(f"**Error:** {entry.text}")
            elif entry.text.strip():
                parts.append(entry.text)
        return "\n\n".join(parts)

    # -- folding events in -----------------------------------------------------------------

    def apply(self, event: Event) -> bool:
        """Fold ``event`` in; False (and nothing changes) if it was already applied."""
        if event.seq and event.seq <= self.last_seq:
            return False
        if event.seq:
            self.last_seq = event.seq
        if not self.session_id and event.session_id:
            self.session_id = event.session_id
        handler = getattr(self, f"_on_{event.type}", None)
        if handler is not None:
            handler(event)
        return True

    def extend(self, events: list[Event]) -> int:
        """Apply each event; how many were new."""
        return sum(1 for e in events if self.apply(e))

    def _on_status(self, event: Any) -> None:
        self.state, self.detail = event.state, event.detail
        if event.state == "busy":
            self.busy = True
        elif event.state in ("stopped", "failed"):
            self._end_turn("interrupted")

    def _on_text_delta(self, event: Any) -> None:
        if event.parent_tool_use_id:
            return  # a sub-agent's text arrives whole as a message, under its Task
        if self._open is None:
            self._open = ChatEntry("assistant", "", streaming=True)
            self.entries.append(self._open)
        self._open.text += event.text

    def _on_message(self, event: Any) -> None:
        if event.parent_tool_use_id:
            parent = self.calls.get(event.parent_tool_use_id)
            if parent is not None and event.role == "assistant":
                parent.notes.append(event.text)
            return
        if event.role == "user":
            self._close_block()
            last = self.entries[-1] if self.entries else None
            if last is not None and last.role == "user" and last.shown_early:
                # the prompt a cell showed before sending it, now in the log: once
                last.text, last.shown_early = event.text, False
            else:
                self.entries.append(ChatEntry("user", event.text, shown_early=not event.seq))
            self.busy = True
        elif event.role == "assistant":
            # the whole block is authoritative: it replaces whatever deltas came (or not)
            if self._open is not None:
                self._open.text = event.text
                self._close_block()
            else:
                self.entries.append(ChatEntry("assistant", event.text))

    def _on_tool_use(self, event: Any) -> None:
        self._close_block()
        call = ToolCall(
            tool_use_id=event.tool_use_id,
            name=event.name,
            input=dict(event.input),
            parent_tool_use_id=event.parent_tool_use_id,
            started=event.ts,
            session_id=event.session_id,
        )
        if event.tool_use_id in self.permissions:
            call.status = "waiting"
        self.calls[call.tool_use_id] = call
        parent = self.calls.get(event.parent_tool_use_id or "")
        if parent is not None:
            parent.children.append(call)
        else:
            self.timeline.append(call)

    def _on_tool_result(self, event: Any) -> None:
        self.permissions.pop(event.tool_use_id, None)
        call = self.calls.get(event.tool_use_id)
        if call is None:
            return
        call.status = "error" if event.is_error else "ok"
        call.output = event.output
        call.ended = event.ts

    def _on_todo_update(self, event: Any) -> None:
        self.todos = list(event.todos)

    def _on_permission_request(self, event: Any) -> None:
        self.permissions[event.request_id] = PendingPermission(
            event.request_id, event.tool_name, dict(event.input)
        )
        call = self.calls.get(event.request_id)
        if call is not None and call.status == "running":
            call.status = "waiting"

    def _on_permission_answer(self, event: Any) -> None:
        # answered somewhere (another tab, a notebook, REST, a timeout): not waiting here
        self.answered(event.request_id)
        if event.reason == "timeout":
            self._close_block()
            self.entries.append(ChatEntry("error", event.message or DENIED_IN_TIME))

    def _on_result(self, event: Any) -> None:
        self.turns += 1
        if event.cost_usd:
            self.cost_usd += event.cost_usd
        if event.session_usage:
            # the gateway's meter: every model call of the session, sub-agents included
            self.input_tokens = int(event.session_usage.get("input_tokens", 0))
            self.output_tokens = int(event.session_usage.get("output_tokens", 0))
        else:
            usage = event.usage
            self.input_tokens += sum(
                int(usage.get(k) or 0)
                for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
            )
            self.output_tokens += int(usage.get("output_tokens") or 0)

    def _on_error(self, event: Any) -> None:
        self._close_block()
        self.entries.append(ChatEntry("error", error_text(event.message, event.code)))

    def _on_done(self, event: Any) -> None:
        self._end_turn("interrupted")

    def answered(self, request_id: str) -> None:
        """A permission request was answered here: stop offering it."""
        self.permissions.pop(request_id, None)
        call = self.calls.get(request_id)
        if call is not None and call.status == "waiting":
            call.status = "running"

    def _close_block(self) -> None:
        if self._open is not None:
            self._open.streaming = False
            self._open = None

    def _end_turn(self, unfinished: ToolStatus) -> None:
        # a call without a result when the turn ends was cut off (interrupt, crash)
        self._close_block()
        for call in self.calls.values():
            if call.status in ("running", "waiting"):
                call.status = unfinished
        self.permissions.clear()
        self.busy = False
