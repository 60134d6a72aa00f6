"""The session events: one pydantic model per type, and their SSE framing.

The runner turns SDK messages into these events *without* ``seq``, ``session_id`` and
``ts``; the session's event log stamps those three when it appends, so ``seq`` is gapless
per session and ``ts`` is the server clock.  Nothing else invents events.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

__all__ = [
    "SESSION_STATES",
    "CheckpointEvent",
    "DoneEvent",
    "ErrorEvent",
    "Event",
    "EventBase",
    "KernelCallEvent",
    "MessageEvent",
    "PermissionAnswerEvent",
    "PermissionRequestEvent",
    "ResultEvent",
    "NotebookEditEvent",
    "RewindEvent",
    "SessionState",
    "StatusEvent",
    "TextDeltaEvent",
    "ThinkingEvent",
    "TodoItem",
    "TodoUpdateEvent",
    "ToolResultEvent",
    "ToolUseEvent",
    "event_adapter",
    "format_sse",
    "now_iso",
    "parse_event",
    "turn_reply",
]

SessionState = Literal["starting", "ready", "busy", "idle", "stopping", "stopped", "failed"]
SESSION_STATES: tuple[SessionState, ...] = (
    "starting",
    "ready",
    "busy",
    "idle",
    "stopping",
    "stopped",
    "failed",
)


def now_iso() -> str:
    """The server clock as ISO 8601 with an explicit UTC offset."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class EventBase(BaseModel):
    """Fields every event has.  ``seq``/``session_id``/``ts`` are 0/"" until stamped."""

    model_config = ConfigDict(extra="forbid")

    seq: int = 0
    session_id: str = ""
    ts: str = ""


class StatusEvent(EventBase):
    type: Literal["status"] = "status"
    state: SessionState
    detail: str = ""


class TextDeltaEvent(EventBase):
    type: Literal["text_delta"] = "text_delta"
    text: str
    parent_tool_use_id: str | None = None


class MessageEvent(EventBase):
    type: Literal["message"] = "message"
    role: Literal["assistant", "user", "system"] = "assistant"
    text: str
    parent_tool_use_id: str | None = None


class ThinkingEvent(EventBase):
    type: Literal["thinking"] = "thinking"
    text: str
    parent_tool_use_id: str | None = None


class ToolUseEvent(EventBase):
    type: Literal["tool_use"] = "tool_use"
    tool_use_id: str
    name: str
    input: dict[str, Any] = Field(default_factory=dict)
    parent_tool_use_id: str | None = None


class ToolResultEvent(EventBase):
    type: Literal["tool_result"] = "tool_result"
    tool_use_id: str
    is_error: bool = False
    output: str = ""
    parent_tool_use_id: str | None = None


class TodoItem(BaseModel):
    model_config = ConfigDict(extra="ignore")

    content: str
    status: Literal["pending", "in_progress", "completed"] = "pending"
    activeForm: str = ""


class TodoUpdateEvent(EventBase):
    type: Literal["todo_update"] = "todo_update"
    todos: list[TodoItem]


class PermissionRequestEvent(EventBase):
    type: Literal["permission_request"] = "permission_request"
    request_id: str
    tool_name: str
    input: dict[str, Any] = Field(default_factory=dict)


class KernelCallEvent(EventBase):
    """A kernel tool call that reached a user's kernel (``kernels/tools.py``), logged by the
    server: what ran where, who allowed it, how it ended.  ``code`` is empty for the
    inspections (they run the fixed code of ``kernels/snippets.py``)."""

    type: Literal["kernel_call"] = "kernel_call"
    notebook: str
    kernel_id: str
    tool: str
    code: str = ""
    #: "inspection" (no approval needed), "kernel_access allow", "ahead" (approved for the
    #: turn), or who answered the permission request
    approved_by: str = ""
    duration_ms: int = 0
    #: ok | error | timeout | busy (the kernel did not answer; nothing ran) | denied |
    #: refused
    outcome: str = "refused"


class PermissionAnswerEvent(EventBase):
    """A permission request answered, and by whom: a Jupyter user through the server's
    API (the panel, a widget, REST), or ``timeout`` (``permission_timeout``: a deny).
    Logged by the server, never by the runner: only the server can answer."""

    type: Literal["permission_answer"] = "permission_answer"
    request_id: str
    decision: Literal["allow", "deny"]
    answered_by: str
    reason: Literal["user", "timeout"] = "user"
    #: for a timeout: what the user is told
    message: str = ""


class ResultEvent(EventBase):
    type: Literal["result"] = "result"
    #: what this turn cost (USD), worked out by the session from ``cost_total_usd``
    cost_usd: float | None = None
    #: the SDK's running total for the conversation, as the runner got it
    cost_total_usd: float | None = None
    usage: dict[str, Any] = Field(default_factory=dict)
    duration_ms: int = 0
    num_turns: int = 0
    sdk_session_id: str | None = None
    is_error: bool = False
    #: tokens the gateway metered for the whole session so far (stamped by the server)
    session_usage: dict[str, int] = Field(default_factory=dict)
    #: the turn's last top-level assistant message: a rewind to after this turn resumes
    #: the conversation there
    message_uuid: str | None = None


class ErrorEvent(EventBase):
    type: Literal["error"] = "error"
    message: str
    code: str = "error"


class DoneEvent(EventBase):
    type: Literal["done"] = "done"


class CheckpointEvent(EventBase):
    """What turn ``turn`` changed in the workspace; logged at its end, before ``done``."""

    type: Literal["checkpoint"] = "checkpoint"
    turn: int
    files_changed: int = 0
    added: int = 0
    modified: int = 0
    deleted: int = 0
    lines_added: int = 0
    lines_removed: int = 0


class RewindEvent(EventBase):
    """The files and the conversation were put back to before turn ``turn``."""

    type: Literal["rewind"] = "rewind"
    turn: int


class NotebookEditEvent(EventBase):
    """The agent changed one of the user's notebooks through the ``jupyter`` tools: an
    open notebook shows it (``version`` is the content's hash after the edit)."""

    type: Literal["notebook_edit"] = "notebook_edit"
    path: str
    version: str
    created: bool = False
    inserted: list[str] = Field(default_factory=list)
    replaced: list[str] = Field(default_factory=list)
    deleted: list[str] = Field(default_factory=list)


Event = Annotated[
    (
        StatusEvent
        | TextDeltaEvent
        | MessageEvent
        | ThinkingEvent
        | ToolUseEvent
        | ToolResultEvent
        | TodoUpdateEvent
        | PermissionRequestEvent
        | PermissionAnswerEvent
        | ResultEvent
        | ErrorEvent
        | DoneEvent
        | CheckpointEvent
        | RewindEvent
        | NotebookEditEvent
        | KernelCallEvent
    ),
    Field(discriminator="type"),
]

event_adapter: TypeAdapter[Event] = TypeAdapter(Event)


def parse_event(data: str | bytes | dict[str, Any]) -> Event:
    """Validate one event from JSON text or a dict (raises ``pydantic.ValidationError``)."""
    if isinstance(data, dict):
        return event_adapter.validate_python(data)
    return event_adapter.validate_json(data)


def format_sse(event: EventBase) -> bytes:
    """SSE framing of DESIGN.md: ``id``, ``event`` and one ``data`` line."""
    payload = event.model_dump(mode="json")
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    return f"id: {event.seq}\nevent: {payload['type']}\ndata: {body}\n\n".encode()


def turn_reply(session_id: str, events: Iterable[Event]) -> dict[str, Any]:
    """One turn as the chat API's JSON answer (and ``%%agent``'s ``-o`` value): the
    top-level assistant text joined, the last ``result`` and every event."""
    turn = list(events)
    text = "\n\n".join(
        e.text
        for e in turn
        if e.type == "message" and e.role == "assistant" and not e.parent_tool_use_id
    )
    results = [e.model_dump(mode="json") for e in turn if e.type == "result"]
    return {
        "session_id": session_id,
        "text": text,
        "result": results[-1] if results else None,
        "events": [e.model_dump(mode="json") for e in turn],
    }
