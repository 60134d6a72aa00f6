"""SDK messages → events (runner/normalize.py), on real SDK message objects shaped like
what the bundled CLI really sends; and the runner's rseq event buffer."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
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

from agcluster_jupyter.events import EventBase, MessageEvent, StatusEvent
from agcluster_jupyter.runner.eventbuffer import EventBuffer
from agcluster_jupyter.runner.normalize import (
    MAX_OUTPUT_BYTES,
    Normalizer,
    tool_output_text,
    truncate_output,
)


def dump(events: list[EventBase]) -> list[dict[str, Any]]:
    return [e.model_dump(exclude={"seq", "session_id", "ts"}) for e in events]


def assistant(*blocks: Any, parent: str | None = None, error: Any = None) -> AssistantMessage:
    return AssistantMessage(
        content=list(blocks), model="m", parent_tool_use_id=parent, error=error, session_id="s1"
    )


def tool_result(
    tool_use_id: str,
    content: Any,
    result: Any = None,
    is_error: bool | None = None,
    parent: str | None = None,
) -> UserMessage:
    return UserMessage(
        content=[ToolResultBlock(tool_use_id=tool_use_id, content=content, is_error=is_error)],
        parent_tool_use_id=parent,
        tool_use_result=result,
    )


def result_message(**fields: Any) -> ResultMessage:
    base: dict[str, Any] = {
        "subtype": "success",
        "duration_ms": 263,
        "duration_api_ms": 105,
        "is_error": False,
        "num_turns": 3,
        "session_id": "sess-1",
        "total_cost_usd": 0.00084,
        "usage": {"input_tokens": 60, "output_tokens": 30},
        "result": "Done.",
        "terminal_reason": "completed",
    }
    base.update(fields)
    return ResultMessage(**base)


def stream(event: dict[str, Any], parent: str | None = None) -> StreamEvent:
    return StreamEvent(uuid="u", session_id="s1", event=event, parent_tool_use_id=parent)


# -- content blocks --------------------------------------------------------------------


def test_text_and_two_tool_calls_are_three_events() -> None:
    events = Normalizer()(
        assistant(
            TextBlock(text="Let me look."),
            ToolUseBlock(id="t1", name="Bash", input={"command": "ls"}),
            ToolUseBlock(id="t2", name="Read", input={"file_path": "/w/a.py"}),
        )
    )
    assert dump(events) == [
        {
            "type": "message",
            "role": "assistant",
            "text": "Let me look.",
            "parent_tool_use_id": None,
        },
        {
            "type": "tool_use",
            "tool_use_id": "t1",
            "name": "Bash",
            "input": {"command": "ls"},
            "parent_tool_use_id": None,
        },
        {
            "type": "tool_use",
            "tool_use_id": "t2",
            "name": "Read",
            "input": {"file_path": "/w/a.py"},
            "parent_tool_use_id": None,
        },
    ]
    # the server stamps these
    assert all(e.seq == 0 and e.session_id == "" and e.ts == "" for e in events)


def test_thinking_block() -> None:
    events = Normalizer()(assistant(ThinkingBlock(thinking="Plan it.", signature="sig")))
    assert dump(events) == [{"type": "thinking", "text": "Plan it.", "parent_tool_use_id": None}]


def test_stream_events_give_text_deltas_only() -> None:
    normalize = Normalizer()
    text = {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "text_delta", "text": "Hel"},
    }
    assert dump(normalize(stream(text))) == [
        {"type": "text_delta", "text": "Hel", "parent_tool_use_id": None}
    ]
    silent: list[dict[str, Any]] = [
        {"type": "message_start", "message": {"id": "m1", "content": []}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text"}},
        {"type": "content_block_delta", "delta": {"type": "thinking_delta", "thinking": "h"}},
        {"type": "content_block_delta", "delta": {"type": "input_json_delta", "partial_json": "{"}},
        {"type": "content_block_delta", "delta": {"type": "text_delta", "text": ""}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}},
        {"type": "message_stop"},
    ]
    for event in silent:
        assert normalize(stream(event)) == [], event


def test_sub_agent_events_carry_the_parent_tool_use_id() -> None:
    normalize = Normalizer()
    parent = "toolu_agent"
    events = [
        *normalize(
            stream(
                {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "x"}},
                parent=parent,
            )
        ),
        *normalize(
            assistant(
                TextBlock(text="Sub-agent here."),
                ToolUseBlock(id="t9", name="Grep", input={"pattern": "def"}),
                parent=parent,
            )
        ),
        *normalize(tool_result("t9", "a.py:1:def f", parent=parent)),
        *normalize(UserMessage(content="Find the functions", parent_tool_use_id=parent)),
    ]
    assert [e.type for e in events] == [  # type: ignore[attr-defined]
        "text_delta",
        "message",
        "tool_use",
        "tool_result",
        "message",
    ]
    assert all(e.parent_tool_use_id == parent for e in events)  # type: ignore[attr-defined]
    assert isinstance(events[-1], MessageEvent) and events[-1].role == "user"


def test_the_clis_interrupt_markers_are_not_user_messages() -> None:
    # nobody typed them; the turn's error event says the turn was interrupted
    normalize = Normalizer()
    for marker in ("[Request interrupted by user]", "[Request interrupted by user for tool use]"):
        assert normalize(UserMessage(content=marker)) == []
        assert normalize(UserMessage(content=[TextBlock(text=marker)])) == []
    [kept] = normalize(UserMessage(content="[Request] a real prompt"))
    assert isinstance(kept, MessageEvent) and kept.text == "[Request] a real prompt"


# -- tool results ------------------------------------------------------------------------


def test_tool_result_text_and_list_contents() -> None:
    normalize = Normalizer()
    bash = normalize(
        tool_result("t1", "hi", result={"stdout": "hi", "stderr": "", "interrupted": False})
    )
    assert dump(bash) == [
        {
            "type": "tool_result",
            "tool_use_id": "t1",
            "is_error": False,
            "output": "hi",
            "parent_tool_use_id": None,
        }
    ]
    parts = [
        {"type": "text", "text": "line 1"},
        {"type": "image", "source": {"type": "base64", "data": "..."}},
        {"type": "text", "text": "line 2"},
    ]
    [event] = normalize(tool_result("t2", parts))
    assert event.output == "line 1\n[image]\nline 2"  # type: ignore[attr-defined]


def test_tool_error_with_a_plain_string_result() -> None:
    # what the CLI sends for a disabled tool: an error block and a bare string result
    message = "Error: No such tool available: TodoWrite. TodoWrite is disabled"
    [event] = Normalizer()(tool_result("t1", None, result=message, is_error=True))
    assert event.is_error is True and event.output == message  # type: ignore[attr-defined]
    assert tool_output_text(None, None) == ""
    assert tool_output_text({"k": 1}) == '{"k": 1}'


def test_huge_outputs_keep_head_and_tail() -> None:
    output = "HEAD\n" + "x" * (MAX_OUTPUT_BYTES * 3) + "\nTAIL"
    [event] = Normalizer()(tool_result("t1", output))
    text = event.output  # type: ignore[attr-defined]
    assert text.startswith("HEAD\n") and text.endswith("\nTAIL")
    assert "output truncated" in text and f"{len(output)} bytes" in text
    assert len(text.encode()) < MAX_OUTPUT_BYTES + 200
    assert truncate_output("small") == "small"
    # multi-byte characters cut at the limit must not raise or leave broken UTF-8
    cut = truncate_output("é" * MAX_OUTPUT_BYTES)
    assert cut.encode("utf-8").decode("utf-8") == cut


# -- results and errors ---------------------------------------------------------------


def test_a_successful_result() -> None:
    events = Normalizer()(result_message())
    assert dump(events) == [
        {
            "type": "result",
            # the SDK's running total, as is: the session works out the turn's own cost
            "cost_usd": None,
            "cost_total_usd": 0.00084,
            "usage": {"input_tokens": 60, "output_tokens": 30},
            "duration_ms": 263,
            "num_turns": 3,
            "sdk_session_id": "sess-1",
            "is_error": False,
            "session_usage": {},
            "message_uuid": None,
        }
    ]


def test_api_failure_gives_result_and_error() -> None:
    normalize = Normalizer()
    # exactly what the CLI sends when the upstream answers 401
    text = "Invalid API key · Fix external API key"
    message_events = normalize(assistant(TextBlock(text=text), error="authentication_failed"))
    assert dump(message_events) == [
        {"type": "message", "role": "assistant", "text": text, "parent_tool_use_id": None}
    ]
    events = normalize(
        result_message(
            is_error=True,
            api_error_status=401,
            terminal_reason="api_error",
            result=text,
            total_cost_usd=0,
            num_turns=1,
        )
    )
    assert [e.type for e in events] == ["result", "error"]  # type: ignore[attr-defined]
    assert events[0].is_error is True  # type: ignore[attr-defined]
    assert dump(events)[1] == {
        "type": "error",
        "code": "api_error_401",
        "message": f"the model API answered HTTP 401: {text}",
    }


def test_max_turns_and_execution_errors() -> None:
    normalize = Normalizer()
    events = normalize(
        result_message(
            subtype="error_max_turns",
            is_error=True,
            terminal_reason="max_turns",
            result=None,
            errors=["Reached maximum number of turns (1)"],
        )
    )
    assert dump(events)[1] == {
        "type": "error",
        "code": "max_turns",
        "message": "the agent stopped at its turn limit: Reached maximum number of turns (1)",
    }
    events = normalize(
        result_message(subtype="error_during_execution", is_error=True, result=None, errors=[])
    )
    assert dump(events)[1] == {
        "type": "error",
        "code": "during_execution",
        "message": "the turn failed (error_during_execution)",
    }


def test_an_interrupted_turn() -> None:
    # what the CLI sends after interrupt() stopped a running Bash call
    events = Normalizer()(
        result_message(
            subtype="error_during_execution",
            is_error=True,
            result=None,
            terminal_reason="aborted_tools",
            errors=["[ede_diagnostic] result_type=user last_content_type=n/a stop_reason=tool_use"],
        )
    )
    assert dump(events)[1] == {
        "type": "error",
        "code": "interrupted",
        "message": "the turn was interrupted",
    }


def test_system_messages_are_skipped_but_retries_show() -> None:
    normalize = Normalizer()
    assert normalize(SystemMessage(subtype="init", data={"session_id": "s"})) == []
    assert normalize(SystemMessage(subtype="status", data={"status": "requesting"})) == []
    retry = SystemMessage(
        subtype="api_retry",
        data={
            "attempt": 1,
            "max_retries": 2,
            "retry_delay_ms": 500,
            "error_status": 529,
            "error": "overloaded",
        },
    )
    [event] = normalize(retry)
    assert isinstance(event, StatusEvent) and event.state == "busy"
    assert event.detail == "model API 529; retry 1/2 in 0.5s"
    assert normalize(object()) == []


# -- task tracking ---------------------------------------------------------------------


def _todos(events: list[EventBase]) -> list[list[dict[str, Any]]]:
    return [d["todos"] for d in dump(events) if d["type"] == "todo_update"]


def test_task_tools_build_the_todo_list() -> None:
    normalize = Normalizer()
    # the shapes the bundled CLI 2.1.33x really sends (see normalize.py)
    calls = normalize(
        assistant(
            TextBlock(text="Planning."),
            ToolUseBlock(
                id="c1",
                name="TaskCreate",
                input={"subject": "Write file", "description": "d", "activeForm": "Writing file"},
            ),
            ToolUseBlock(
                id="c2",
                name="TaskCreate",
                input={"subject": "Edit file", "description": "d", "activeForm": "Editing file"},
            ),
        )
    )
    assert _todos(calls) == []  # no id before the result
    first = normalize(
        tool_result(
            "c1",
            "Task #1 created successfully: Write file",
            result={"task": {"id": "1", "subject": "Write file", "description": "d"}},
        )
    )
    assert [e.type for e in first] == ["tool_result", "todo_update"]  # type: ignore[attr-defined]
    assert _todos(first) == [
        [{"content": "Write file", "status": "pending", "activeForm": "Writing file"}]
    ]
    second = normalize(
        tool_result(
            "c2",
            "Task #2 created successfully: Edit file",
            result={"task": {"id": "2", "subject": "Edit file", "description": "d"}},
        )
    )
    assert [t["content"] for t in _todos(second)[0]] == ["Write file", "Edit file"]

    normalize(
        assistant(
            ToolUseBlock(id="u1", name="TaskUpdate", input={"taskId": "1", "status": "in_progress"})
        )
    )
    update = normalize(
        tool_result(
            "u1",
            "Updated task #1 status",
            result={
                "success": True,
                "taskId": "1",
                "updatedFields": ["status"],
                "statusChange": {"from": "pending", "to": "in_progress"},
            },
        )
    )
    assert [t["status"] for t in _todos(update)[0]] == ["in_progress", "pending"]

    # an unknown id is no tool error for the CLI, only "success": false
    normalize(
        assistant(
            ToolUseBlock(id="u2", name="TaskUpdate", input={"taskId": "42", "status": "completed"})
        )
    )
    not_found = {"success": False, "taskId": "42", "updatedFields": [], "error": "Task not found"}
    assert _todos(normalize(tool_result("u2", "Task not found", result=not_found))) == []
    normalize(
        assistant(ToolUseBlock(id="u3", name="TaskUpdate", input={"taskId": "2", "status": "x"}))
    )
    assert (
        _todos(normalize(tool_result("u3", "<tool_use_error>bad</tool_use_error>", is_error=True)))
        == []
    )

    # TaskList is the CLI's own view: it wins
    normalize(assistant(ToolUseBlock(id="l1", name="TaskList", input={})))
    listed = normalize(
        tool_result(
            "l1",
            "#1 [completed] Write file\n#2 [pending] Edit file",
            result={
                "tasks": [
                    {"id": "1", "subject": "Write file", "status": "completed", "blockedBy": []},
                    {"id": "2", "subject": "Edit file", "status": "pending", "blockedBy": []},
                ]
            },
        )
    )
    assert [t["status"] for t in _todos(listed)[0]] == ["completed", "pending"]
    # an unchanged list is not sent again
    normalize(assistant(ToolUseBlock(id="l2", name="TaskList", input={})))
    assert _todos(normalize(tool_result("l2", "same", result={"tasks": []}))) == []

    normalize(
        assistant(
            ToolUseBlock(id="d1", name="TaskUpdate", input={"taskId": "1", "status": "deleted"})
        )
    )
    deleted = normalize(
        tool_result(
            "d1",
            "Updated task #1 deleted",
            result={
                "success": True,
                "taskId": "1",
                "updatedFields": ["deleted"],
                "statusChange": {"from": "completed", "to": "deleted"},
            },
        )
    )
    assert _todos(deleted) == [
        [{"content": "Edit file", "status": "pending", "activeForm": "Editing file"}]
    ]


def test_task_id_from_the_result_text() -> None:
    normalize = Normalizer()
    normalize(
        assistant(
            ToolUseBlock(id="c1", name="TaskCreate", input={"subject": "S", "description": "d"})
        )
    )
    normalize(tool_result("c1", "Task #7 created successfully: S"))
    normalize(
        assistant(
            ToolUseBlock(
                id="u1",
                name="TaskUpdate",
                input={
                    "taskId": "7",
                    "status": "completed",
                    "subject": "S2",
                    "activeForm": "Doing",
                },
            )
        )
    )
    [_, todo] = normalize(tool_result("u1", "Updated task #7 status"))
    assert dump([todo])[0]["todos"] == [
        {"content": "S2", "status": "completed", "activeForm": "Doing"}
    ]


def test_todo_write_applies_only_when_the_cli_accepts_it() -> None:
    normalize = Normalizer()
    todos = [
        {"content": "Write tests", "status": "in_progress", "activeForm": "Writing tests"},
        {"content": "Ship", "status": "pending", "activeForm": "Shipping"},
    ]
    normalize(assistant(ToolUseBlock(id="w1", name="TodoWrite", input={"todos": todos})))
    # the bundled CLI disables TodoWrite by default
    refused = normalize(
        tool_result("w1", None, result="Error: TodoWrite is disabled", is_error=True)
    )
    assert _todos(refused) == []
    normalize(assistant(ToolUseBlock(id="w2", name="TodoWrite", input={"todos": todos})))
    accepted = normalize(tool_result("w2", "Todos have been modified successfully"))
    assert _todos(accepted) == [todos]


# -- the rseq event buffer -------------------------------------------------------------


def _rseqs(lines: list[bytes]) -> list[Any]:
    return [json.loads(line)["rseq"] for line in lines]


async def test_buffer_numbers_events_and_reads_after_a_cursor() -> None:
    buffer = EventBuffer(maxlen=100)
    for n in range(5):
        assert buffer.append(MessageEvent(text=str(n))) == n + 1
    lines, cursor = buffer.read(2)
    assert _rseqs(lines) == [3, 4, 5] and cursor == 5
    assert json.loads(lines[0])["event"]["text"] == "2"
    assert buffer.read(5) == ([], 5)


async def test_buffer_marks_a_gap_when_events_fell_out() -> None:
    buffer = EventBuffer(maxlen=3)
    for n in range(10):
        buffer.append(MessageEvent(text=str(n)))
    lines, cursor = buffer.read(2)
    assert json.loads(lines[0]) == {"rseq": 7, "gap": True, "from": 3}
    assert _rseqs(lines[1:]) == [8, 9, 10] and cursor == 10


async def test_buffer_wakes_waiters_and_closes() -> None:
    buffer = EventBuffer()
    assert await buffer.wait(0, 0.01) is False  # a heartbeat is due
    waiter = asyncio.create_task(buffer.wait(0, 5))
    await asyncio.sleep(0)
    buffer.append(MessageEvent(text="x"))
    assert await waiter is True
    closing = asyncio.create_task(buffer.wait(1, 5))
    await asyncio.sleep(0)
    buffer.close()
    assert await closing is True and buffer.closed


async def test_buffer_count_survives_the_process(tmp_path: Path) -> None:
    counter = tmp_path / "runner-rseq"
    first = EventBuffer(counter=counter)
    for n in range(3):
        first.append(MessageEvent(text=str(n)))
    # no close(): a killed runner leaves the count behind all the same
    second = EventBuffer(counter=counter)
    assert second.last_rseq == 3 and second.first_rseq == 4
    assert second.append(MessageEvent(text="again")) == 4
    lines, _ = second.read(3)
    assert _rseqs(lines) == [4]
    # 1..3 were the earlier process's: a new subscriber simply starts with 4
    lines, _ = second.read(0)
    assert _rseqs(lines) == [4]
    second.close()
    first.close()
    counter.write_text("garbage")
    assert EventBuffer(counter=counter).last_rseq == 0
