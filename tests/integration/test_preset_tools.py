"""A preset's tools are what the model really gets.

For every preset, the real claude CLI runs once through the real SDK, with the options
``build_sdk_options`` makes, against the scripted model; the test reads the ``tools`` of
the request the model received.  The four presets (and one inline config exercising
model, max_turns and an MCP server) run concurrently: one CLI start each.

If this fails after an SDK bump, the CLI's tool behaviour moved: re-check the table in
``agcluster_jupyter/runner/options.py``.
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from claude_agent_sdk import ClaudeSDKClient, ResultMessage, ToolResultBlock, UserMessage, query
from claude_agent_sdk.types import PermissionResultAllow, ToolPermissionContext

from agcluster_jupyter.config import MAIN_AGENT_NAME, AgentConfig
from agcluster_jupyter.presets import PresetRegistry
from agcluster_jupyter.runner.options import build_sdk_options
from agcluster_jupyter.testing import RecordedRequest, ScriptedModelServer

pytestmark = [pytest.mark.cli, pytest.mark.timeout(120)]

TRACKING = {"TaskCreate", "TaskUpdate", "TaskList", "TaskGet"}
SUB_TOOLS = {"Read", "Write", "Edit", "Bash", "Grep", "Glob"} | TRACKING

EXPECTED: dict[str, set[str]] = {
    "code-assistant": {"Bash", "Read", "Write", "Edit", "Grep", "Glob", "Agent"} | TRACKING,
    "research-agent": {"WebFetch", "WebSearch", "Read", "Write", "Grep"} | TRACKING,
    "data-analysis": {"Bash", "Read", "Write", "Edit", "Grep", "Glob", "NotebookEdit"} | TRACKING,
    "fullstack-team": {"Agent", "Read", "Glob", "Grep"} | TRACKING,
}

# a stdio MCP server in a dozen lines: newline-delimited JSON-RPC, one tool "add"
MCP_SERVER = r"""
import json, sys
for line in sys.stdin:
    msg = json.loads(line) if line.strip() else {}
    if "id" not in msg:
        continue
    method, result = msg.get("method"), None
    if method == "initialize":
        result = {"protocolVersion": msg["params"]["protocolVersion"],
                  "capabilities": {"tools": {}}, "serverInfo": {"name": "calc", "version": "1"}}
    elif method == "tools/list":
        tool = {"type": "object", "properties": {"a": {"type": "integer"}}}
        result = {"tools": [{"name": n, "description": n, "inputSchema": tool}
                            for n in ("add", "mul")]}
    elif method == "tools/call":
        result = {"content": [{"type": "text", "text": "42"}]}
    reply = {"jsonrpc": "2.0", "id": msg["id"]}
    reply.update({"result": result} if result is not None
                 else {"error": {"code": -32601, "message": "unknown method"}})
    print(json.dumps(reply), flush=True)
"""


def model_tools(request: RecordedRequest) -> set[str]:
    """Tool names the model can see: deferred ones (``defer_loading``) stay out of its
    context (the CLI always adds an inert ``DeferredToolPlaceholder``)."""
    return {t["name"] for t in request.body.get("tools", []) if not t.get("defer_loading")}


def deferred_tools(request: RecordedRequest) -> set[str]:
    return {t["name"] for t in request.body.get("tools", []) if t.get("defer_loading")}


def context_text(request: RecordedRequest) -> str:
    """Everything textual the model sees besides tools: system blocks and messages."""
    texts: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, str):
            texts.append(value)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, dict):
            walk(value.get("text"))
            walk(value.get("content"))

    walk(request.body.get("system"))
    walk(request.body.get("messages"))
    return "\n".join(texts)


def agent_types(request: RecordedRequest) -> list[str]:
    """The agent types listed for the Agent tool (a system message of the CLI)."""
    for message in request.body.get("messages", []):
        content = message.get("content")
        blocks = content if isinstance(content, list) else [{"type": "text", "text": content}]
        for block in blocks:
            text = block.get("text") or ""
            if "Available agent types for the Agent tool:" in text:
                section = text.split("Available agent types for the Agent tool:", 1)[1]
                section = section.split("\n\n", 1)[0]
                return re.findall(r"^- ([^:\n]+):", section, flags=re.MULTILINE)
    return []


async def run_config(
    model: ScriptedModelServer, config: AgentConfig, base: Path, prompt: str
) -> list[Any]:
    home = base / config.id
    (home / "ws").mkdir(parents=True)
    stderr: list[str] = []
    options = build_sdk_options(
        config,
        cwd=str(home / "ws"),
        env=model.client_env(home / "config", home / "tmp"),
        stderr=stderr.append,
    )
    messages = [m async for m in query(prompt=prompt, options=options)]
    result = messages[-1]
    assert isinstance(result, ResultMessage), stderr[-5:]
    assert not result.is_error, (result, stderr[-5:])
    return messages


def requests_for(model: ScriptedModelServer, prompt: str) -> list[RecordedRequest]:
    return [r for r in model.message_requests if r.prompt == prompt]


async def test_each_preset_offers_exactly_its_tools(
    scripted_model: ScriptedModelServer, tmp_path: Path
) -> None:
    registry = PresetRegistry()
    assert set(registry.ids()) == set(EXPECTED)
    (tmp_path / "calc.py").write_text(MCP_SERVER)
    inline = AgentConfig.model_validate(
        {
            "id": "inline",
            "allowed_tools": ["Read", "mcp__calc__add"],
            "mcp_servers": {
                "calc": {"command": sys.executable, "args": [str(tmp_path / "calc.py")]}
            },
            "model": "claude-sonnet-4-5",
            "max_turns": 3,
            "system_prompt": "INLINE-PROMPT-MARKER",
        }
    )
    scripted_model.add_scenarios(
        [
            {
                "match": "preset fullstack-team",
                "steps": [
                    [
                        {
                            "tool_use": {
                                "name": "Agent",
                                "input": {
                                    "description": "Build the UI",
                                    "prompt": "frontend subtask: build the page",
                                    "subagent_type": "frontend",
                                    "run_in_background": False,
                                },
                            }
                        }
                    ]
                ],
                "final": "The team is done.",
            },
            {"match": "frontend subtask", "steps": [["Page built."]]},
            {
                "match": "preset inline",
                "steps": [[{"tool_use": {"name": "mcp__calc__add", "input": {"a": 1}}}]],
                "final": "It is 42.",
            },
            {"match": "re:^preset ", "steps": [["Ready."]]},
        ]
    )
    configs = [*(registry.get(i) for i in sorted(EXPECTED)), inline]
    started = time.monotonic()
    results = await asyncio.gather(
        *(run_config(scripted_model, c, tmp_path, f"preset {c.id}") for c in configs)
    )
    elapsed = time.monotonic() - started
    by_id = dict(zip([c.id for c in configs], results, strict=True))

    for preset_id, expected in EXPECTED.items():
        first = requests_for(scripted_model, f"preset {preset_id}")[0]
        assert model_tools(first) == expected, preset_id
        assert deferred_tools(first) <= {"DeferredToolPlaceholder"}, preset_id
        config = registry.get(preset_id)
        if isinstance(config.system_prompt, str):
            assert config.system_prompt.strip() in context_text(first)

    # code-assistant: the CLI's own long prompt, with our text appended at its end
    code = requests_for(scripted_model, "preset code-assistant")[0]
    system = code.body["system"][-1]["text"]
    prompt = registry.get("code-assistant").system_prompt
    assert prompt is not None and not isinstance(prompt, str) and prompt.append
    assert system.rstrip().endswith(prompt.append.rstrip())
    assert len(system) > len(prompt.append) + 5000, "the claude_code preset prompt is there"
    assert agent_types(code) == ["claude", "Explore", "general-purpose", "Plan"]

    # fullstack-team: exactly its three sub-agents; the lead keeps to its own tools while
    # the frontend sub-agent gets its write and shell tools
    team = requests_for(scripted_model, "preset fullstack-team")
    assert sorted(agent_types(team[0])) == ["backend", "devops", "frontend"]
    assert MAIN_AGENT_NAME not in context_text(team[0])
    assert all(model_tools(r) == EXPECTED["fullstack-team"] for r in team)
    sub = requests_for(scripted_model, "frontend subtask: build the page")
    assert len(sub) == 1
    assert model_tools(sub[0]) == SUB_TOOLS
    frontend = registry.get("fullstack-team").agents["frontend"].prompt
    assert frontend.split("\n")[0] in context_text(sub[0])
    assert any(
        isinstance(m, UserMessage)
        and any(isinstance(b, ToolResultBlock) and not b.is_error for b in m.content)
        for m in by_id["fullstack-team"]
    )

    # inline: model and the MCP server reach the CLI; only the listed MCP tool is offered
    calls = requests_for(scripted_model, "preset inline")
    assert calls[0].body["model"] == "claude-sonnet-4-5"
    assert model_tools(calls[0]) == {"Read", "mcp__calc__add"}
    assert "INLINE-PROMPT-MARKER" in context_text(calls[0])
    results_text = [
        str(b.content)
        for m in by_id["inline"]
        if isinstance(m, UserMessage) and isinstance(m.content, list)
        for b in m.content
        if isinstance(b, ToolResultBlock)
    ]
    assert results_text and "42" in results_text[0]
    print(f"\n{len(configs)} configs through the real CLI concurrently: {elapsed:.2f}s")


async def test_max_turns_reaches_the_cli(
    scripted_model: ScriptedModelServer, tmp_path: Path
) -> None:
    scripted_model.add_scenarios(
        [
            {
                "match": "keep going",
                "steps": [[{"tool_use": {"name": "Read", "input": {"file_path": "{cwd}/a.txt"}}}]]
                * 4,
            }
        ]
    )
    config = AgentConfig(id="short", allowed_tools=["Read"], max_turns=2)
    (tmp_path / "short" / "ws").mkdir(parents=True)
    (tmp_path / "short" / "ws" / "a.txt").write_text("a")
    options = build_sdk_options(
        config,
        cwd=str(tmp_path / "short" / "ws"),
        env=scripted_model.client_env(tmp_path / "cfg", tmp_path / "tmp"),
    )
    messages: list[Any] = []
    with pytest.raises(Exception, match="maximum number of turns"):
        async for message in query(prompt="keep going", options=options):
            messages.append(message)
    result = messages[-1]
    assert isinstance(result, ResultMessage) and result.subtype == "error_max_turns"
    assert len(scripted_model.message_requests) == 2


async def test_default_mode_asks_can_use_tool(
    scripted_model: ScriptedModelServer, tmp_path: Path
) -> None:
    """In default mode nothing is auto-approved, so the CLI asks for Bash (and only the
    tools that need asking); read-only and task tools run without a question."""
    scripted_model.add_scenarios(
        [
            {
                "match": "ask me",
                "steps": [
                    [
                        {
                            "tool_use": {
                                "name": "Bash",
                                "input": {"command": "echo asked > a.txt", "description": "x"},
                            }
                        }
                    ],
                    [{"tool_use": {"name": "Read", "input": {"file_path": "{cwd}/a.txt"}}}],
                    [
                        {
                            "tool_use": {
                                "name": "TaskCreate",
                                "input": {"subject": "s", "description": "d", "activeForm": "a"},
                            }
                        }
                    ],
                ],
            }
        ]
    )
    asked: list[str] = []

    async def can_use_tool(name: str, data: dict[str, Any], ctx: ToolPermissionContext) -> Any:
        asked.append(name)
        return PermissionResultAllow()

    config = AgentConfig(
        id="careful", allowed_tools=["Bash", "Read", "TodoWrite"], permission_mode="default"
    )
    workspace = tmp_path / "ws"
    workspace.mkdir()
    options = build_sdk_options(
        config,
        cwd=str(workspace),
        env=scripted_model.client_env(tmp_path / "cfg", tmp_path / "tmp"),
        can_use_tool=can_use_tool,
    )
    async with ClaudeSDKClient(options) as client:
        await client.query("ask me first")
        messages = [m async for m in client.receive_response()]
    assert isinstance(messages[-1], ResultMessage) and not messages[-1].is_error
    assert asked == ["Bash"]
    assert (workspace / "a.txt").read_text() == "asked\n"
