"""SDK messages → session events: the one place the runner decides what a user sees.

Every content block of every SDK message becomes one event (a message with text and two
tool calls gives three events); streamed text arrives first as ``text_delta`` events
from the SDK's ``StreamEvent`` and then once more, whole, as a ``message``.

The only state is the agent's task list.  The CLI bundled with claude-agent-sdk 0.2.18x
(CLI 2.1.33x) disables ``TodoWrite`` and tracks tasks with ``TaskCreate``/``TaskUpdate``/
``TaskList``/``TaskGet``; what it really sends and answers (observed, not documented)::

    TaskCreate  input  {"subject", "description", "activeForm"?, "metadata"?}
                result {"task": {"id": "1", "subject", "description"}}
                       text "Task #1 created successfully: <subject>"
    TaskUpdate  input  {"taskId", "status"?: pending|in_progress|completed|deleted,
                        "subject"?, "activeForm"?, "description"?, "owner"?, ...}
                result {"success": true, "taskId": "1", "updatedFields": ["status"],
                        "statusChange": {"from": "pending", "to": "in_progress"}}
                       text "Updated task #1 status" ("Updated task #1 deleted")
                unknown id: NOT is_error, but {"success": false, "taskId": "42",
                        "updatedFields": [], "error": "Task not found"}
    TaskList    input  {}
                result {"tasks": [{"id", "subject", "status", "blockedBy"}]}
                       text "#1 [in_progress] Write file\n#2 [pending] Edit file"
    TaskGet     input  {"taskId"}
                result {"task": {"id", "subject", "description", "status", "blocks",
                        "blockedBy"}}

The id only exists once ``TaskCreate`` answers, so :class:`TaskTracker` applies a call
when its (successful) result arrives and emits the whole list as ``todo_update``
whenever it changed.  A ``TodoWrite`` call ``{todos: [...]}`` replaces the list, also on
success only, since the CLI answers it with "TodoWrite is disabled" by default.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from claude_agent_sdk import (
    AssistantMessage,
    ResultMessage,
    StreamEvent,
    SystemMessage,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
    UserMessage,
)
from claude_agent_sdk.types import ServerToolResultBlock, ServerToolUseBlock

from ..events import (
    ErrorEvent,
    EventBase,
    MessageEvent,
    ResultEvent,
    StatusEvent,
    TextDeltaEvent,
    ThinkingEvent,
    TodoItem,
    TodoUpdateEvent,
    ToolResultEvent,
    ToolUseEvent,
)

__all__ = [
    "MAX_OUTPUT_BYTES",
    "TASK_TOOLS",
    "Normalizer",
    "TaskTracker",
    "error_code",
    "tool_output_text",
    "truncate_output",
]

#: tool outputs above this many UTF-8 bytes keep their head and tail only
MAX_OUTPUT_BYTES = 64 * 1024
#: the tools whose calls and results drive ``todo_update``
TASK_TOOLS = frozenset({"TaskCreate", "TaskUpdate", "TaskList", "TaskGet", "TodoWrite"})

_CREATED_RE = re.compile(r"Task #(\S+?) created")
#: text the CLI puts in the conversation as if the user said it, e.g. on an interrupt
_CLI_MARKER = re.compile(r"^\[Request interrupted by user[^\]]*\]$")
_STATUSES = {"pending", "in_progress", "completed"}


def truncate_output(text: str, limit: int = MAX_OUTPUT_BYTES) -> str:
    """Keep the head and the tail of a huge output (errors tend to be at the end)."""
    data = text.encode("utf-8", "replace")
    if len(data) <= limit:
        return text
    head, tail = data[: limit * 3 // 4], data[-(limit // 4) :]
    return (
        head.decode("utf-8", "ignore")
        + f"\n… [output truncated: {len(data)} bytes, showing the first {len(head)} "
        f"and the last {len(tail)}] …\n" + tail.decode("utf-8", "ignore")
    )


def tool_output_text(content: Any, tool_use_result: Any = None) -> str:
    """A tool result as text: text parts joined, other parts named, JSON as a last resort."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts: list[str] = []
        for part in content:
            if isinstance(part, dict) and part.get("type") == "text":
                parts.append(str(part.get("text", "")))
            elif isinstance(part, dict) and "type" in part:
                parts.append(f"[{part['type']}]")
            else:
                parts.append(json.dumps(part, default=str))
        return "\n".join(parts)
    if content is None:
        # the CLI leaves content empty on some errors and says why in tool_use_result
        if isinstance(tool_use_result, str):
            return tool_use_result
        return ""
    return json.dumps(content, default=str)


def error_code(result: ResultMessage) -> str:
    """A stable, greppable code for a failed turn."""
    if result.api_error_status:
        return f"api_error_{result.api_error_status}"
    reason = result.terminal_reason or ""
    if reason.startswith("aborted"):  # aborted_streaming / aborted_tools: an interrupt
        return "interrupted"
    if result.subtype == "error_max_turns" or reason == "max_turns":
        return "max_turns"
    if result.subtype.startswith("error_"):
        return result.subtype.removeprefix("error_")
    return reason or "result_error"


@dataclass
class _Task:
    content: str
    status: str = "pending"
    active_form: str = ""


@dataclass
class TaskTracker:
    """The agent's task list, keyed by the id the CLI assigned."""

    tasks: dict[str, _Task] = field(default_factory=dict)
    #: TodoWrite replaces the list wholesale; kept apart from Task* ids
    todos: list[TodoItem] | None = None
    #: task-tool calls waiting for their result, by tool_use_id
    pending: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)

    def on_tool_use(self, tool_use_id: str, name: str, tool_input: dict[str, Any]) -> None:
        if name in TASK_TOOLS:
            self.pending[tool_use_id] = (name, tool_input)

    def on_tool_result(
        self, tool_use_id: str, is_error: bool, output: str, result: Any
    ) -> TodoUpdateEvent | None:
        """Apply a finished task-tool call; the new list if it changed, else None."""
        call = self.pending.pop(tool_use_id, None)
        if call is None or is_error:
            return None
        before = self.snapshot()
        name, tool_input = call
        if name == "TodoWrite":
            self._todo_write(tool_input)
        elif name == "TaskCreate":
            self._create(tool_input, output, result)
        elif name == "TaskUpdate":
            self._update(tool_input, result)
        elif name == "TaskList" and isinstance(result, dict):
            for item in result.get("tasks") or []:
                self._merge(item)
        elif name == "TaskGet" and isinstance(result, dict):
            self._merge(result.get("task"))
        after = self.snapshot()
        return TodoUpdateEvent(todos=after) if after != before else None

    def snapshot(self) -> list[TodoItem]:
        if self.todos is not None and not self.tasks:
            return [t.model_copy() for t in self.todos]
        return [
            TodoItem(content=t.content, status=t.status, activeForm=t.active_form)
            for t in self.tasks.values()
        ]

    def _todo_write(self, tool_input: dict[str, Any]) -> None:
        todos = tool_input.get("todos")
        if isinstance(todos, list):
            self.todos = [
                TodoItem.model_validate(t) for t in todos if isinstance(t, dict) and _valid(t)
            ]

    def _create(self, tool_input: dict[str, Any], output: str, result: Any) -> None:
        task_id: str | None = None
        if isinstance(result, dict) and isinstance(result.get("task"), dict):
            task_id = str(result["task"].get("id") or "") or None
        if task_id is None:
            match = _CREATED_RE.search(output)
            task_id = match.group(1) if match else None
        if task_id is None:  # an unknown result shape: still show the task
            task_id = f"_{len(self.tasks) + 1}"
        self.tasks[task_id] = _Task(
            content=str(tool_input.get("subject") or tool_input.get("description") or ""),
            active_form=str(tool_input.get("activeForm") or ""),
        )

    def _update(self, tool_input: dict[str, Any], result: Any) -> None:
        task_id = str(tool_input.get("taskId", ""))
        if isinstance(result, dict) and result.get("success") is False:
            return
        status = tool_input.get("status")
        if isinstance(result, dict) and isinstance(result.get("statusChange"), dict):
            status = result["statusChange"].get("to", status)
        if status == "deleted":
            self.tasks.pop(task_id, None)
            return
        task = self.tasks.setdefault(task_id, _Task(content=f"Task #{task_id}"))
        if status in _STATUSES:
            task.status = status
        if isinstance(tool_input.get("subject"), str):
            task.content = tool_input["subject"]
        if isinstance(tool_input.get("activeForm"), str):
            task.active_form = tool_input["activeForm"]

    def _merge(self, item: Any) -> None:
        # TaskList/TaskGet are the CLI's own view: trust them (e.g. after a resume)
        if not isinstance(item, dict) or "id" not in item:
            return
        task = self.tasks.setdefault(str(item["id"]), _Task(content=""))
        if isinstance(item.get("subject"), str):
            task.content = item["subject"]
        if item.get("status") in _STATUSES:
            task.status = item["status"]
        if isinstance(item.get("activeForm"), str):
            task.active_form = item["activeForm"]


def _valid(todo: dict[str, Any]) -> bool:
    return isinstance(todo.get("content"), str) and todo.get("status", "pending") in _STATUSES


class Normalizer:
    """Turns each SDK message into events; one per runner (it owns the task list)."""

    def __init__(self) -> None:
        self.tasks = TaskTracker()
        # the text of an AssistantMessage(error=...) explains the failed result best
        self._last_api_error: str | None = None

    def __call__(self, message: object) -> list[EventBase]:
        if isinstance(message, StreamEvent):
            return self._stream_event(message)
        if isinstance(message, AssistantMessage):
            return self._assistant(message)
        if isinstance(message, UserMessage):
            return self._user(message)
        if isinstance(message, ResultMessage):
            return self._result(message)
        if isinstance(message, SystemMessage):
            return self._system(message)
        # RateLimitEvent, ConversationResetMessage, …: not user-facing
        return []

    def _stream_event(self, message: StreamEvent) -> list[EventBase]:
        event = message.event
        delta = event.get("delta") if event.get("type") == "content_block_delta" else None
        # thinking deltas are skipped: the whole thinking block follows anyway
        if isinstance(delta, dict) and delta.get("type") == "text_delta" and delta.get("text"):
            parent = message.parent_tool_use_id
            return [TextDeltaEvent(text=delta["text"], parent_tool_use_id=parent)]
        return []

    def _assistant(self, message: AssistantMessage) -> list[EventBase]:
        parent = message.parent_tool_use_id
        events: list[EventBase] = []
        for block in message.content:
            if isinstance(block, TextBlock):
                events.append(MessageEvent(text=block.text, parent_tool_use_id=parent))
                if message.error:
                    self._last_api_error = block.text
            elif isinstance(block, ThinkingBlock):
                events.append(ThinkingEvent(text=block.thinking, parent_tool_use_id=parent))
            elif isinstance(block, (ToolUseBlock, ServerToolUseBlock)):
                tool_input = dict(block.input) if isinstance(block.input, dict) else {}
                self.tasks.on_tool_use(block.id, block.name, tool_input)
                events.append(
                    ToolUseEvent(
                        tool_use_id=block.id,
                        name=block.name,
                        input=tool_input,
                        parent_tool_use_id=parent,
                    )
                )
            elif isinstance(block, (ToolResultBlock, ServerToolResultBlock)):
                events.extend(self._tool_result(block, None, parent))
        if message.error and not self._last_api_error:
            self._last_api_error = message.error
        return events

    def _user(self, message: UserMessage) -> list[EventBase]:
        parent = message.parent_tool_use_id
        if isinstance(message.content, str):
            if _CLI_MARKER.match(message.content):
                return []  # nobody typed it: the turn's error event says it was interrupted
            # e.g. a sub-agent's prompt (under its Task)
            return [MessageEvent(role="user", text=message.content, parent_tool_use_id=parent)]
        events: list[EventBase] = []
        for block in message.content:
            if isinstance(block, (ToolResultBlock, ServerToolResultBlock)):
                events.extend(self._tool_result(block, message.tool_use_result, parent))
            elif isinstance(block, TextBlock) and not _CLI_MARKER.match(block.text):
                events.append(MessageEvent(role="user", text=block.text, parent_tool_use_id=parent))
        return events

    def _tool_result(
        self,
        block: ToolResultBlock | ServerToolResultBlock,
        tool_use_result: Any,
        parent: str | None,
    ) -> list[EventBase]:
        if isinstance(block, ServerToolResultBlock):
            is_error, raw = False, json.dumps(block.content, default=str)
        else:
            is_error = bool(block.is_error)
            raw = tool_output_text(block.content, tool_use_result)
        events: list[EventBase] = [
            ToolResultEvent(
                tool_use_id=block.tool_use_id,
                is_error=is_error,
                output=truncate_output(raw),
                parent_tool_use_id=parent,
            )
        ]
        todo = self.tasks.on_tool_result(block.tool_use_id, is_error, raw, tool_use_result)
        if todo is not None:
            events.append(todo)
        return events

    def _result(self, message: ResultMessage) -> list[EventBase]:
        events: list[EventBase] = [
            ResultEvent(
                # the SDK's figure is the conversation's running total (a resumed CLI
                # goes on from it), not the turn's: the session works the turn's out
                cost_total_usd=message.total_cost_usd,
                usage=dict(message.usage or {}),
                duration_ms=message.duration_ms,
                num_turns=message.num_turns,
                sdk_session_id=message.session_id,
                is_error=message.is_error,
            )
        ]
        if message.is_error:
            code = error_code(message)
            detail = (
                "; ".join(message.errors or [])
                or self._last_api_error
                or message.result
                or f"the turn failed ({message.subtype})"
            )
            if code == "interrupted":
                # the CLI's errors here are internal diagnostics, not for a person
                text = "the turn was interrupted"
            elif message.api_error_status:
                text = f"the model API answered HTTP {message.api_error_status}: {detail}"
            elif code == "max_turns":
                text = f"the agent stopped at its turn limit: {detail}"
            else:
                text = detail
            events.append(ErrorEvent(message=text, code=code))
        self._last_api_error = None
        return events

    def _system(self, message: SystemMessage) -> list[EventBase]:
        if message.subtype != "api_retry":
            return []
        data = message.data
        status = data.get("error_status") or data.get("error") or "error"
        delay = (data.get("retry_delay_ms") or 0) / 1000
        detail = (
            f"model API {status}; retry {data.get('attempt', '?')}/"
            f"{data.get('max_retries', '?')} in {delay:.1f}s"
        )
        return [StatusEvent(state="busy", detail=detail)]
