"""The real claude CLI, through the real SDK, against the scripted model: real tools run
in a temporary workspace, and the model's side is checked from the recorded requests."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from claude_agent_sdk import (
    AssistantMessage,
    ClaudeAgentOptions,
    ClaudeSDKClient,
    ResultMessage,
    SystemMessage,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
    UserMessage,
    query,
)

from agcluster_jupyter.testing import ScriptedModelServer

pytestmark = [pytest.mark.cli, pytest.mark.timeout(120)]

TOOLS = ["Bash", "Write", "Edit", "Read", "TaskCreate", "TaskUpdate"]


def options(
    model: ScriptedModelServer, tmp_path: Path, *, tools: list[str] | None = None, **env: str
) -> ClaudeAgentOptions:
    workspace = tmp_path / "ws"
    workspace.mkdir(exist_ok=True)
    full_env = {**model.client_env(tmp_path / "config", tmp_path / "cli-tmp"), **env}
    stderr: list[str] = []
    # As root, bypassPermissions is refused; acceptEdits + allowed_tools runs everything.
    return ClaudeAgentOptions(
        cwd=str(workspace),
        permission_mode="acceptEdits",
        allowed_tools=TOOLS,
        tools=tools,
        env={k: v for k, v in full_env.items() if v},
        stderr=stderr.append,
    )


def blocks(messages: list[Any], kind: type) -> list[Any]:
    found = []
    for message in messages:
        if isinstance(message, (AssistantMessage, UserMessage)) and isinstance(
            message.content, list
        ):
            found += [b for b in message.content if isinstance(b, kind)]
    return found


async def run(prompt: str, opts: ClaudeAgentOptions) -> list[Any]:
    return [message async for message in query(prompt=prompt, options=opts)]


async def test_bash_write_final_text_loop(
    scripted_model: ScriptedModelServer, tmp_path: Path
) -> None:
    scripted_model.add_scenarios(
        [
            {
                "match": "build the greeting",
                "steps": [
                    [
                        {"text": "First a shell check."},
                        {
                            "tool_use": {
                                "name": "Bash",
                                "input": {
                                    "command": "echo from-bash > bash.txt && cat bash.txt",
                                    "description": "Write and show a marker file",
                                },
                            }
                        },
                    ],
                    [
                        {
                            "tool_use": {
                                "name": "Write",
                                "input": {
                                    "file_path": "{cwd}/hello.py",
                                    "content": "print('hello from {prompt}')\n",
                                },
                            }
                        }
                    ],
                ],
                "final": "Wrote hello.py for: {prompt}",
            }
        ]
    )
    started = time.monotonic()
    messages = await run("please build the greeting", options(scripted_model, tmp_path))
    elapsed = time.monotonic() - started

    workspace = tmp_path / "ws"
    assert (workspace / "bash.txt").read_text() == "from-bash\n"
    assert (workspace / "hello.py").read_text() == "print('hello from please build the greeting')\n"
    assert [b.name for b in blocks(messages, ToolUseBlock)] == ["Bash", "Write"]
    results = blocks(messages, ToolResultBlock)
    assert len(results) == 2 and "from-bash" in str(results[0].content)
    assert not any(r.is_error for r in results)
    texts = [b.text for b in blocks(messages, TextBlock)]
    assert texts == ["First a shell check.", "Wrote hello.py for: please build the greeting"]
    result = messages[-1]
    assert isinstance(result, ResultMessage) and not result.is_error
    requests = scripted_model.message_requests
    assert result.usage is not None
    for field in ("input_tokens", "output_tokens"):  # the CLI adds up what the model said
        assert result.usage[field] == sum(r.info["usage"][field] for r in requests), field
    assert [r.reply.step for r in requests if r.reply] == [0, 1, 2]
    assert all(r.prompt == "please build the greeting" for r in requests)
    assert {"Bash", "Write", "Edit", "Read"} <= set(requests[0].tool_names)
    assert requests[0].headers["x-api-key"] == scripted_model.client_env()["ANTHROPIC_API_KEY"]
    assert all(r.body["stream"] is True for r in requests)
    print(f"\nBash → Write → text through the real CLI: {elapsed:.2f}s, {len(requests)} requests")


async def test_demo_tour_tracks_tasks_writes_runs_and_edits(
    scripted_model: ScriptedModelServer, tmp_path: Path
) -> None:
    messages = await run("analyse some data", options(scripted_model, tmp_path, tools=TOOLS))
    script = (tmp_path / "ws" / "analysis.py").read_text()
    assert "statistics.median" in script  # written, then edited
    uses = blocks(messages, ToolUseBlock)
    assert [u.name for u in uses].count("TaskCreate") == 3
    assert {"TaskUpdate", "Write", "Bash", "Edit"} <= {u.name for u in uses}
    outputs = " ".join(str(r.content) for r in blocks(messages, ToolResultBlock))
    assert "median: 21.0 C" in outputs and "Task #3 created" in outputs
    assert not any(r.is_error for r in blocks(messages, ToolResultBlock))
    assert isinstance(messages[-1], ResultMessage) and not messages[-1].is_error
    offered = scripted_model.message_requests[0].tool_names
    assert {"TaskCreate", "TaskUpdate"} <= set(offered)


async def test_bad_key_fails_fast_without_retries(
    scripted_model: ScriptedModelServer, tmp_path: Path
) -> None:
    # No CLAUDE_CODE_MAX_RETRIES here: x-should-retry: false alone must stop the retries.
    opts = options(
        scripted_model, tmp_path, ANTHROPIC_API_KEY="wrong-key", CLAUDE_CODE_MAX_RETRIES=""
    )
    started = time.monotonic()
    async with ClaudeSDKClient(opts) as client:
        await client.query("hello")
        messages = [m async for m in client.receive_response()]
    elapsed = time.monotonic() - started
    result = messages[-1]
    assert isinstance(result, ResultMessage) and result.is_error
    assert any(isinstance(m, AssistantMessage) and m.error for m in messages)
    assert not any(isinstance(m, SystemMessage) and m.subtype == "api_retry" for m in messages)
    assert [r.status for r in scripted_model.message_requests] == [401]
    assert elapsed < 20
    print(f"\nbad key → ResultMessage(is_error) in {elapsed:.2f}s")


async def test_overloaded_once_is_retried(
    scripted_model: ScriptedModelServer, tmp_path: Path
) -> None:
    scripted_model.add_scenarios(
        [{"match": "flaky", "steps": [[{"error": 529, "times": 1}, "made it"]]}]
    )
    opts = options(scripted_model, tmp_path, CLAUDE_CODE_MAX_RETRIES="2")
    async with ClaudeSDKClient(opts) as client:
        await client.query("flaky please")
        messages = [m async for m in client.receive_response()]
    retries = [m for m in messages if isinstance(m, SystemMessage) and m.subtype == "api_retry"]
    assert len(retries) == 1 and retries[0].data["error_status"] == 529
    assert [b.text for b in blocks(messages, TextBlock)] == ["made it"]
    assert [r.status for r in scripted_model.message_requests] == [529, 200]


async def test_broken_stream_is_an_api_error(
    scripted_model: ScriptedModelServer, tmp_path: Path
) -> None:
    scripted_model.add_scenarios(
        [{"match": "cut", "steps": [[{"broken_stream": 2}, "one two three four five six seven"]]}]
    )
    opts = options(scripted_model, tmp_path, CLAUDE_CODE_DISABLE_NONSTREAMING_FALLBACK="1")
    async with ClaudeSDKClient(opts) as client:
        await client.query("cut me off")
        messages = [m async for m in client.receive_response()]
    assert isinstance(messages[-1], ResultMessage) and messages[-1].is_error
    assert scripted_model.message_requests[0].info.get("broken") is True


async def test_interrupt_a_slow_tool_then_next_prompt(
    scripted_model: ScriptedModelServer, tmp_path: Path
) -> None:
    scripted_model.add_scenarios(
        [
            {
                "match": "slow",
                "steps": [
                    [
                        {
                            "tool_use": {
                                "name": "Bash",
                                "input": {"command": "python3 -c 'import time; time.sleep(30)'"},
                            }
                        }
                    ]
                ],
            }
        ]
    )
    async with ClaudeSDKClient(options(scripted_model, tmp_path)) as client:
        await client.query("something slow")
        first: list[Any] = []
        async for message in client.receive_response():
            first.append(message)
            if blocks([message], ToolUseBlock):
                await asyncio.sleep(0.5)  # let Bash start
                await client.interrupt()
        await client.query("hello again")
        second = [m async for m in client.receive_response()]
    assert isinstance(first[-1], ResultMessage)
    # The next request merges the tool result, the interrupt marker and the new prompt;
    # the scripted model still finds the prompt and answers it from its first step.
    last = scripted_model.message_requests[-1]
    merged = last.body["messages"][-1]
    kinds = [b["type"] for b in merged["content"]]
    assert merged["role"] == "user" and "tool_result" in kinds, merged
    assert "[Request interrupted by user for tool use]" in str(merged["content"])
    assert last.prompt == "hello again" and last.reply is not None
    assert (last.reply.scenario, last.reply.step) == ("greeting", 0)
    assert "scripted demo model" in " ".join(b.text for b in blocks(second, TextBlock))
    assert isinstance(second[-1], ResultMessage) and not second[-1].is_error
