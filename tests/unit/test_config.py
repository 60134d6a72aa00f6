"""AgentConfig validation: every field valid and invalid, with the field named."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from agcluster_jupyter.config import (
    KNOWN_TOOLS,
    TOOL_ALIASES,
    AgentConfig,
    McpHttpServer,
    McpSseServer,
    McpStdioServer,
    PresetSystemPrompt,
    ResourceLimits,
    cli_tool_names,
    format_validation_error,
    parse_size,
)

GiB = 1024**3
MiB = 1024**2


def make(**fields: Any) -> AgentConfig:
    return AgentConfig.model_validate({"id": "test", **fields})


def problem(fields: dict[str, Any], prefix: str = "") -> tuple[str, str]:
    with pytest.raises(ValidationError) as info:
        AgentConfig.model_validate({"id": "test", **fields})
    return format_validation_error(info.value, prefix)


# -- sizes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("4g", 4 * GiB),
        ("4G", 4 * GiB),
        ("512m", 512 * MiB),
        ("10GiB", 10 * GiB),
        ("10gb", 10 * GiB),
        ("1.5g", int(1.5 * GiB)),
        ("2t", 2 * 1024**4),
        ("64k", 64 * 1024),
        (" 8 g ", 8 * GiB),
        ("1048576", 1048576),
        (4096, 4096),
    ],
)
def test_parse_size(text: str | int, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "g", "4x", "-1g", "0", "0g", "4 gigs", "4gi", True, 0, -5])
def test_parse_size_rejects(text: Any) -> None:
    with pytest.raises(ValueError):
        parse_size(text)


# -- every field, valid ----------------------------------------------------------------

VALID: list[tuple[str, Any]] = [
    ("id", "a"),
    ("id", "my-agent_2"),
    ("id", "0" * 63),
    ("name", "My Agent"),
    ("description", "does things"),
    ("allowed_tools", []),
    ("allowed_tools", sorted(KNOWN_TOOLS)),
    ("disallowed_tools", ["Bash"]),
    ("permission_mode", "default"),
    ("permission_mode", "acceptEdits"),
    ("permission_mode", "plan"),
    ("permission_mode", "bypassPermissions"),
    ("system_prompt", None),
    ("system_prompt", "You are helpful."),
    ("system_prompt", {"type": "preset", "preset": "claude_code"}),
    ("system_prompt", {"type": "preset", "preset": "claude_code", "append": "Be brief."}),
    ("system_prompt", {"append": "Be brief."}),
    ("resource_limits", {"cpu": 0.5, "memory": "512m", "storage": "1g"}),
    ("resource_limits", {"cpu": 64, "memory": "10GiB", "storage": 10 * GiB}),
    ("resource_limits", {}),
    ("max_turns", 1),
    ("max_turns", 1000),
    ("max_turns", None),
    ("model", "claude-sonnet-4-5"),
    ("model", "claude-opus-4-1-20250805"),
    ("model", "us.anthropic.claude-sonnet-4-5-v1:0"),
    ("network", True),
    ("network", False),
    ("token_budget", 1),
    ("token_budget", 1_000_000),
    ("mcp_servers", {}),
    ("mcp_servers", {"fs": {"command": "mcp-fs", "args": ["/workspace"], "env": {"A": "1"}}}),
    ("mcp_servers", {"fs": {"type": "stdio", "command": "mcp-fs"}}),
    ("mcp_servers", {"docs": {"type": "sse", "url": "https://mcp.example.com/sse"}}),
    ("mcp_servers", {"api": {"type": "http", "url": "http://x:8080/mcp", "headers": {"A": "b"}}}),
]


@pytest.mark.parametrize(("field", "value"), VALID, ids=[f"{f}={v!r}"[:60] for f, v in VALID])
def test_valid_field(field: str, value: Any) -> None:
    config = make(**{field: value})
    assert getattr(config, field) is not None or value is None


def test_sub_agents_valid() -> None:
    config = make(
        allowed_tools=["Task", "Read"],
        agents={
            "backend": {"description": "d", "prompt": "p", "tools": ["Read", "Bash"]},
            "x_2": {"description": "d", "prompt": "p", "model": "haiku"},
        },
    )
    assert config.agents["backend"].tools == ["Read", "Bash"]
    assert config.agents["x_2"].tools is None


def test_agent_tool_name_counts_as_task() -> None:
    # the CLI calls the Task tool "Agent": either name lets sub-agents run
    config = make(allowed_tools=["Agent"], agents={"a": {"description": "d", "prompt": "p"}})
    assert config.allowed_tools == ["Agent"] and set(config.agents) == {"a"}
    assert cli_tool_names(config.allowed_tools) == ["Agent"]
    with pytest.raises(ValidationError, match="Task"):
        make(allowed_tools=["Read"], agents={"a": {"description": "d", "prompt": "p"}})


# -- every field, invalid: the message names the field ---------------------------------

INVALID: list[tuple[dict[str, Any], str, str]] = [
    ({"id": ""}, "id", "not an id"),
    ({"id": "Has Caps"}, "id", "not an id"),
    ({"id": "-lead"}, "id", "not an id"),
    ({"id": "a" * 64}, "id", "not an id"),
    ({"id": 5}, "id", "string"),
    ({"name": ["x"]}, "name", "string"),
    ({"description": 3}, "description", "string"),
    ({"allowed_tools": "Bash"}, "allowed_tools", "list"),
    ({"allowed_tools": ["Read", "Foo"]}, "allowed_tools.1", "unknown tool 'Foo'"),
    ({"allowed_tools": ["bash"]}, "allowed_tools.0", "unknown tool"),
    ({"allowed_tools": ["mcp__"]}, "allowed_tools.0", "unknown tool"),
    ({"allowed_tools": ["mcp__nope__x"]}, "allowed_tools.0", "not in mcp_servers"),
    ({"disallowed_tools": ["Nope"]}, "disallowed_tools.0", "unknown tool"),
    ({"permission_mode": "yolo"}, "permission_mode", "acceptEdits"),
    ({"system_prompt": 5}, "system_prompt", "a system prompt is text"),
    ({"system_prompt": ["a"]}, "system_prompt", "a system prompt is text"),
    ({"system_prompt": {"type": "preset", "preset": "other"}}, "system_prompt.preset", ""),
    ({"system_prompt": {"type": "custom"}}, "system_prompt.type", "preset"),
    ({"system_prompt": {"append": 3}}, "system_prompt.append", "string"),
    ({"system_prompt": {"appendix": "x"}}, "system_prompt.appendix", "unknown field"),
    ({"resource_limits": {"cpu": 0}}, "resource_limits.cpu", "greater than 0"),
    ({"resource_limits": {"cpu": 65}}, "resource_limits.cpu", "less than or equal to 64"),
    ({"resource_limits": {"cpu": "lots"}}, "resource_limits.cpu", "number"),
    ({"resource_limits": {"memory": "4x"}}, "resource_limits.memory", "not a size"),
    ({"resource_limits": {"memory": "100m"}}, "resource_limits.memory", "too small"),
    ({"resource_limits": {"memory": "2t"}}, "resource_limits.memory", "too large"),
    ({"resource_limits": {"memory": True}}, "resource_limits.memory", "size"),
    ({"resource_limits": {"storage": "10q"}}, "resource_limits.storage", "not a size"),
    ({"resource_limits": {"storage": "1m"}}, "resource_limits.storage", "too small"),
    ({"resource_limits": {"gpu": 1}}, "resource_limits.gpu", "unknown field"),
    ({"max_turns": 0}, "max_turns", "greater than or equal to 1"),
    ({"max_turns": 1001}, "max_turns", "less than or equal to 1000"),
    ({"max_turns": "many"}, "max_turns", "integer"),
    ({"model": ""}, "model", "not a model name"),
    ({"model": "has space"}, "model", "not a model name"),
    ({"network": "sometimes"}, "network", "boolean"),
    ({"token_budget": 0}, "token_budget", "greater than or equal to 1"),
    ({"agents": {"a": {"description": "d", "prompt": "p"}}}, "allowed_tools", "need 'Task'"),
    (
        {"allowed_tools": ["Task"], "agents": {"Front": {"description": "d", "prompt": "p"}}},
        "agents.Front",
        "must look like an id",
    ),
    (
        {"allowed_tools": ["Task"], "agents": {"fe": {"prompt": "p"}}},
        "agents.fe.description",
        "required",
    ),
    (
        {"allowed_tools": ["Task"], "agents": {"fe": {"description": "d", "prompt": ""}}},
        "agents.fe.prompt",
        "at least 1 character",
    ),
    (
        {
            "allowed_tools": ["Task"],
            "agents": {"fe": {"description": "d", "prompt": "p", "tools": ["Read", "Nope"]}},
        },
        "agents.fe.tools.1",
        "unknown tool 'Nope'",
    ),
    (
        {
            "allowed_tools": ["Task"],
            "agents": {"fe": {"description": "d", "prompt": "p", "tools": ["mcp__x__y"]}},
        },
        "agents.fe.tools.0",
        "not in mcp_servers",
    ),
    (
        {"allowed_tools": ["Task"], "agents": {"fe": {"description": "d", "prompt": "p", "x": 1}}},
        "agents.fe.x",
        "unknown field",
    ),
    ({"mcp_servers": {"fs": {"type": "stdio"}}}, "mcp_servers.fs.command", "required"),
    ({"mcp_servers": {"fs": {"command": ""}}}, "mcp_servers.fs.command", "at least 1"),
    ({"mcp_servers": {"fs": {"command": "x", "args": "a b"}}}, "mcp_servers.fs.args", "list"),
    ({"mcp_servers": {"d": {"type": "sse"}}}, "mcp_servers.d.url", "required"),
    ({"mcp_servers": {"d": {"type": "sse", "url": "ftp://x"}}}, "mcp_servers.d.url", "pattern"),
    ({"mcp_servers": {"d": {"type": "http", "url": "x"}}}, "mcp_servers.d.url", "pattern"),
    ({"mcp_servers": {"d": {"type": "ws", "url": "ws://x"}}}, "mcp_servers.d", "an MCP server"),
    ({"mcp_servers": {"d": "mcp-fs"}}, "mcp_servers.d", "an MCP server"),
    ({"mcp_servers": {"a b": {"command": "x"}}}, "mcp_servers.a b", "letters, digits"),
    ({"mcp_servers": {"stdio": {"type": "http", "url": "x"}}}, "mcp_servers.stdio.url", ""),
    ({"unknown_field": 1}, "unknown_field", "unknown field 'unknown_field'"),
    # not a list at all (once a TypeError in the network inference: found by hypothesis)
    ({"allowed_tools": 5}, "allowed_tools", "valid list"),
    ({"allowed_tools": {"Bash": True}}, "allowed_tools", "valid list"),
]


@pytest.mark.parametrize(("fields", "field", "fragment"), INVALID, ids=[f for _, f, _ in INVALID])
def test_invalid_field_is_named(fields: dict[str, Any], field: str, fragment: str) -> None:
    message, at = problem(fields)
    assert at == field
    assert message.startswith(f"{field}: ")
    assert fragment.lower() in message.lower()


def test_missing_id_is_named() -> None:
    with pytest.raises(ValidationError) as info:
        AgentConfig.model_validate({})
    assert format_validation_error(info.value) == ("id: Field required", "id")


def test_prefix_and_more_problems() -> None:
    message, field = problem({"resource_limits": {"memory": "4x"}, "max_turns": 0}, prefix="config")
    # the first problem in field order is reported
    assert field == "config.resource_limits.memory"
    assert message.startswith("config.resource_limits.memory: '4x' is not a size")
    assert message.endswith("(and 1 more problem)")


# -- semantics -------------------------------------------------------------------------


def test_defaults() -> None:
    config = make()
    assert config.name == "Test"
    assert config.permission_mode == "acceptEdits"
    assert config.system_prompt is None
    assert config.resource_limits == ResourceLimits(cpu=1.0, memory="2g", storage="5g")
    assert config.network is False
    assert config.max_turns is None and config.model is None and config.token_budget is None


def test_resource_limit_sizes() -> None:
    limits = make(resource_limits={"cpu": 2, "memory": "4g", "storage": "10GiB"}).resource_limits
    assert limits.cpu == 2.0
    assert limits.memory == "4g" and limits.memory_bytes == 4 * GiB
    assert limits.storage == "10GiB" and limits.storage_bytes == 10 * GiB
    assert make(resource_limits={"memory": 512 * MiB}).resource_limits.memory == str(512 * MiB)


def test_system_prompt_text_vs_preset() -> None:
    text = make(system_prompt="You are a researcher.")
    assert text.system_prompt == "You are a researcher."
    preset = make(system_prompt={"type": "preset", "preset": "claude_code", "append": "Extra."})
    assert preset.system_prompt == PresetSystemPrompt(append="Extra.")
    bare = make(system_prompt={"type": "preset", "preset": "claude_code"})
    assert isinstance(bare.system_prompt, PresetSystemPrompt)
    assert bare.system_prompt.append is None
    # round trip through JSON (the runner gets its config as JSON)
    again = AgentConfig.model_validate_json(preset.model_dump_json())
    assert again == preset


def test_mcp_server_kinds() -> None:
    config = make(
        mcp_servers={
            "fs": {"command": "mcp-fs", "args": ["/workspace"]},
            "docs": {"type": "sse", "url": "https://docs.example.com/sse"},
            "api": {"type": "http", "url": "https://api.example.com/mcp"},
        },
        allowed_tools=["Read", "mcp__fs__read_file", "mcp__docs", "mcp__api__*"],
    )
    assert isinstance(config.mcp_servers["fs"], McpStdioServer)
    assert config.mcp_servers["fs"].type == "stdio"
    assert isinstance(config.mcp_servers["docs"], McpSseServer)
    assert isinstance(config.mcp_servers["api"], McpHttpServer)
    assert config.network is True  # inferred from the remote servers


@pytest.mark.parametrize(
    ("fields", "network"),
    [
        ({}, False),
        ({"allowed_tools": ["WebFetch"]}, True),
        ({"allowed_tools": ["WebSearch"], "network": False}, False),
        ({"allowed_tools": ["Read"], "network": True}, True),
        ({"mcp_servers": {"fs": {"command": "x"}}}, False),
        ({"mcp_servers": {"d": {"type": "http", "url": "http://x"}}}, True),
        (
            {
                "allowed_tools": ["Task"],
                "agents": {"r": {"description": "d", "prompt": "p", "tools": ["WebSearch"]}},
            },
            True,
        ),
    ],
)
def test_network_is_inferred_when_left_out(fields: dict[str, Any], network: bool) -> None:
    assert make(**fields).network is network


def test_sub_agents_need_task() -> None:
    message, field = problem({"agents": {"a": {"description": "d", "prompt": "p"}}})
    assert field == "allowed_tools"
    assert "Task" in message


def test_preset_prompt_sub_agent_cannot_exceed_main_tools() -> None:
    base: dict[str, Any] = {
        "allowed_tools": ["Task", "Read", "TodoWrite"],
        "system_prompt": {"type": "preset", "preset": "claude_code", "append": "x"},
    }
    # within the main agent's tools (after mapping TodoWrite → Task*): fine
    make(**base, agents={"a": {"description": "d", "prompt": "p", "tools": ["Read", "TaskList"]}})
    make(**base, agents={"a": {"description": "d", "prompt": "p"}})
    message, field = problem(
        {**base, "agents": {"a": {"description": "d", "prompt": "p", "tools": ["Read", "Write"]}}}
    )
    assert field == "agents.a.tools"
    assert "Write" in message and "text system_prompt" in message
    # with a text prompt the runner gives sub-agents their own tools
    make(
        **{**base, "system_prompt": "lead"},
        agents={"a": {"description": "d", "prompt": "p", "tools": ["Write"]}},
    )


def test_duplicate_tools_are_dropped() -> None:
    assert make(allowed_tools=["Read", "Bash", "Read"]).allowed_tools == ["Read", "Bash"]


def test_summary() -> None:
    config = make(
        description="d",
        allowed_tools=["Task", "Read"],
        agents={"a": {"description": "d", "prompt": "p"}},
    )
    assert config.summary() == {
        "id": "test",
        "name": "Test",
        "description": "d",
        "allowed_tools": ["Task", "Read"],
        "permission_mode": "acceptEdits",
        "has_mcp_servers": False,
        "has_sub_agents": True,
        "resource_limits": {"cpu": 1.0, "memory": "2g", "storage": "5g"},
        "system_prompt": "",
    }
    assert make(system_prompt="Be brief.").summary()["system_prompt"] == "Be brief."
    appended = make(system_prompt={"type": "preset", "preset": "claude_code", "append": "Tests!"})
    assert appended.summary()["system_prompt"] == "Claude Code's own system prompt, and: Tests!"


@pytest.mark.parametrize(
    ("tools", "mapped"),
    [
        (["Task"], ["Agent"]),
        (["TodoWrite"], ["TaskCreate", "TaskUpdate", "TaskList", "TaskGet"]),
        (
            ["TodoWrite", "TaskList", "Task", "Agent"],
            ["TaskCreate", "TaskUpdate", "TaskList", "TaskGet", "Agent"],
        ),
        (["MultiEdit", "Edit"], ["Edit"]),
        (["KillShell"], ["TaskStop"]),
        (["BashOutput", "TaskOutput"], []),
        (["Bash", "mcp__fs__read"], ["Bash", "mcp__fs__read"]),
    ],
)
def test_cli_tool_names(tools: list[str], mapped: list[str]) -> None:
    assert cli_tool_names(tools) == mapped


def test_aliases_only_for_known_tools() -> None:
    assert set(TOOL_ALIASES) <= KNOWN_TOOLS
    assert {t for names in TOOL_ALIASES.values() for t in names} <= KNOWN_TOOLS
