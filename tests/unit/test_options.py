"""``build_sdk_options``: every config field reaches ``ClaudeAgentOptions``."""

from __future__ import annotations

from typing import Any

import pytest
from claude_agent_sdk import AgentDefinition, ClaudeAgentOptions
from claude_agent_sdk.types import PermissionResultAllow, ToolPermissionContext

from agcluster_jupyter.config import MAIN_AGENT_NAME, AgentConfig
from agcluster_jupyter.presets import PresetRegistry
from agcluster_jupyter.runner.options import (
    BUILTIN_AGENTS,
    CHECKED_AGAINST,
    build_sdk_options,
    environment_note,
    map_tools,
    plan_tools,
)

TRACKING = ["TaskCreate", "TaskUpdate", "TaskList", "TaskGet"]
ENV = {"ANTHROPIC_BASE_URL": "http://127.0.0.1:1", "ANTHROPIC_API_KEY": "session-token"}


async def allow(name: str, data: dict[str, Any], ctx: ToolPermissionContext) -> Any:
    return PermissionResultAllow()


def options(fields: dict[str, Any] | AgentConfig, **kw: Any) -> ClaudeAgentOptions:
    config = (
        fields
        if isinstance(fields, AgentConfig)
        else AgentConfig.model_validate({"id": "t", **fields})
    )
    return build_sdk_options(config, cwd="/workspace", env=dict(ENV), **kw)


def test_checked_against_the_installed_sdk() -> None:
    from importlib.metadata import version

    assert version("claude-agent-sdk") in CHECKED_AGAINST


def test_plain_fields_reach_the_options() -> None:
    def on_stderr(line: str) -> None:
        pass

    opts = options(
        {"max_turns": 7, "model": "claude-sonnet-4-5", "allowed_tools": ["Read"]},
        stderr=on_stderr,
        resume="sess-1",
        user="agent",
    )
    assert opts.max_turns == 7
    assert opts.model == "claude-sonnet-4-5"
    assert opts.cwd == "/workspace"
    assert opts.env == ENV
    assert opts.stderr is on_stderr
    assert opts.resume == "sess-1"
    assert opts.user == "agent"
    assert opts.permission_mode == "acceptEdits"
    assert opts.include_partial_messages is True
    assert opts.setting_sources == []
    assert opts.strict_mcp_config is True


def test_unset_fields_stay_unset() -> None:
    opts = options({})
    assert opts.max_turns is None and opts.model is None and opts.resume is None
    assert opts.system_prompt is None
    assert opts.agents is None
    assert opts.mcp_servers == {}
    assert opts.tools == []  # no tools asked for: none sent (not the CLI's default set)
    assert opts.extra_args == {}


def test_text_system_prompt() -> None:
    assert options({"system_prompt": "You are a lead."}).system_prompt == "You are a lead."


def test_preset_prompt_stays_a_preset_dict_with_append() -> None:
    opts = options({"system_prompt": {"type": "preset", "preset": "claude_code", "append": "X"}})
    assert opts.system_prompt == {"type": "preset", "preset": "claude_code", "append": "X"}
    bare = options({"system_prompt": {"type": "preset", "preset": "claude_code"}})
    assert bare.system_prompt == {"type": "preset", "preset": "claude_code"}


@pytest.mark.parametrize(
    ("tools", "sent"),
    [
        (["Bash", "Read"], ["Bash", "Read"]),
        (["Task"], ["Agent"]),
        (["TodoWrite"], TRACKING),
        (["Read", "TodoWrite", "TaskList"], ["Read", *TRACKING]),
        (["WebFetch", "WebSearch", "NotebookEdit", "Grep", "Glob"], None),
        (["MultiEdit", "KillShell", "BashOutput"], ["Edit", "TaskStop"]),
    ],
)
def test_tools_are_mapped(tools: list[str], sent: list[str] | None) -> None:
    opts = options({"allowed_tools": tools})
    assert opts.tools == (tools if sent is None else sent)
    assert opts.allowed_tools == opts.tools  # acceptEdits: nobody approves, all allowed
    assert map_tools(tools) == opts.tools


def test_disallowed_tools_are_mapped_and_removed() -> None:
    opts = options({"allowed_tools": ["Bash", "Read", "TodoWrite"], "disallowed_tools": ["Bash"]})
    assert opts.tools == ["Read", *TRACKING]
    assert "Bash" in opts.disallowed_tools
    assert "Bash" not in opts.allowed_tools


@pytest.mark.parametrize(
    ("mode", "allowed", "gets_callback"),
    [
        ("default", False, True),
        ("acceptEdits", True, False),
        ("plan", False, False),
        ("bypassPermissions", True, False),
    ],
)
def test_permission_mode(mode: str, allowed: bool, gets_callback: bool) -> None:
    opts = options(
        {"allowed_tools": ["Bash", "Write"], "permission_mode": mode}, can_use_tool=allow
    )
    assert opts.permission_mode == mode
    assert opts.tools == ["Bash", "Write"]
    # in default mode an allowed_tools entry would shadow can_use_tool (the SDK warns)
    assert opts.allowed_tools == (["Bash", "Write"] if allowed else [])
    assert (opts.can_use_tool is allow) is gets_callback
    if not gets_callback:
        assert opts.can_use_tool is None


def test_mcp_servers_and_tools() -> None:
    opts = options(
        {
            "allowed_tools": ["Read", "mcp__fs__read_file"],
            "mcp_servers": {
                "fs": {"command": "mcp-fs", "args": ["/workspace"]},
                "docs": {"type": "sse", "url": "https://d.example/sse", "headers": {"A": "b"}},
                "api": {"type": "http", "url": "https://a.example/mcp"},
            },
        }
    )
    assert opts.mcp_servers == {
        "fs": {"type": "stdio", "command": "mcp-fs", "args": ["/workspace"], "env": {}},
        "docs": {"type": "sse", "url": "https://d.example/sse", "headers": {"A": "b"}},
        "api": {"type": "http", "url": "https://a.example/mcp", "headers": {}},
    }
    assert opts.tools == ["Read"]  # tools= takes built-in names only
    assert opts.allowed_tools == ["Read", "mcp__fs__read_file"]
    # the main thread runs as the lead agent so that only the listed MCP tool reaches it
    assert opts.extra_args == {"agent": MAIN_AGENT_NAME}
    assert isinstance(opts.agents, dict)
    assert opts.agents[MAIN_AGENT_NAME].tools == ["Read", "mcp__fs__read_file"]


def test_mcp_with_preset_prompt_keeps_the_preset() -> None:
    opts = options(
        {
            "allowed_tools": ["Read", "mcp__fs__x"],
            "mcp_servers": {"fs": {"command": "mcp-fs"}},
            "system_prompt": {"append": "A"},
        }
    )
    assert opts.extra_args == {}
    assert opts.agents is None
    assert opts.allowed_tools == ["Read", "mcp__fs__x"]


def test_sub_agents_populate_agents() -> None:
    opts = options(
        {
            "allowed_tools": ["Task", "Read", "Write", "TodoWrite"],
            "system_prompt": {"append": "lead"},
            "agents": {
                "reviewer": {
                    "description": "Reviews",
                    "prompt": "You review.",
                    "tools": ["Read", "TodoWrite"],
                    "model": "haiku",
                },
                "writer": {"description": "Writes", "prompt": "You write."},
            },
        }
    )
    assert opts.agents == {
        "reviewer": AgentDefinition(
            description="Reviews", prompt="You review.", tools=["Read", *TRACKING], model="haiku"
        ),
        "writer": AgentDefinition(description="Writes", prompt="You write.", tools=None),
    }
    assert opts.tools == ["Agent", "Read", "Write", *TRACKING]
    assert opts.extra_args == {}  # sub-agents need nothing the main agent lacks
    # with a team, the CLI's own agent types are hidden
    for builtin in BUILTIN_AGENTS:
        assert f"Agent({builtin})" in opts.disallowed_tools


def test_sub_agent_named_like_a_builtin_is_not_hidden() -> None:
    opts = options(
        {
            "allowed_tools": ["Task"],
            "agents": {"general-purpose": {"description": "mine", "prompt": "p"}},
        }
    )
    assert "Agent(general-purpose)" not in opts.disallowed_tools
    assert "Agent(Explore)" in opts.disallowed_tools


def test_plain_task_keeps_the_cli_agent_types() -> None:
    opts = options({"allowed_tools": ["Task", "Read"]})
    assert opts.disallowed_tools == ["Agent(statusline-setup)"]
    plan = plan_tools(AgentConfig(id="t", allowed_tools=["Task"]))
    assert plan.agent_types == ["claude", "Explore", "general-purpose", "Plan"]


def test_lead_agent_when_sub_agents_need_more_tools() -> None:
    opts = options(
        {
            "allowed_tools": ["Task", "Read", "TodoWrite"],
            "system_prompt": "You lead.",
            "agents": {
                "builder": {"description": "d", "prompt": "p", "tools": ["Read", "Write", "Bash"]}
            },
        }
    )
    assert opts.tools == ["Agent", "Read", *TRACKING, "Write", "Bash"]
    assert opts.extra_args == {"agent": MAIN_AGENT_NAME}
    assert opts.agents is not None
    lead = opts.agents[MAIN_AGENT_NAME]
    assert lead.tools == ["Agent", "Read", *TRACKING]
    assert lead.prompt == "You lead."
    assert opts.agents["builder"].tools == ["Read", "Write", "Bash"]
    assert f"Agent({MAIN_AGENT_NAME})" in opts.disallowed_tools
    assert opts.system_prompt == "You lead."
    # the sub-agent's tools are auto-approved too
    assert opts.allowed_tools == opts.tools


def test_presets_map_to_the_expected_tools() -> None:
    registry = PresetRegistry()
    expected = {
        "code-assistant": ["Agent", "Bash", "Edit", "Glob", "Grep", "Read", "Write", *TRACKING],
        "research-agent": ["Grep", "Read", "WebFetch", "WebSearch", "Write", *TRACKING],
        "data-analysis": [
            "Bash",
            "Edit",
            "Glob",
            "Grep",
            "NotebookEdit",
            "Read",
            "Write",
            *TRACKING,
        ],
        "fullstack-team": ["Agent", "Glob", "Grep", "Read", *TRACKING],
    }
    for preset_id, tools in expected.items():
        plan = plan_tools(registry.get(preset_id))
        assert plan.model_tools() == sorted(tools), preset_id
    team = build_sdk_options(registry.get("fullstack-team"), cwd="/w", env={})
    assert team.agents is not None
    assert set(team.agents) == {"frontend", "backend", "devops", MAIN_AGENT_NAME}
    assert plan_tools(registry.get("fullstack-team")).agent_types == [
        "frontend",
        "backend",
        "devops",
    ]


# -- where the agent runs ----------------------------------------------------------------


def test_environment_note_on_the_local_provider() -> None:
    note = environment_note("/srv/agent-workspaces/abc", isolated=False, network=True)
    assert note.startswith("# Where you run\n\n")
    assert "You are NOT isolated" in note and "directly on the user's machine" in note
    assert "Your working directory is /srv/agent-workspaces/abc;" in note
    assert "isolated sandbox" not in note and "survives" not in note
    assert "/workspace" not in note.replace("/srv/agent-workspaces", "")
    assert "can reach the network" in note


def test_environment_note_in_a_container() -> None:
    note = environment_note("/workspace", isolated=True, network=False)
    assert "isolated sandbox of your own" in note and "NOT isolated" not in note
    assert "Your working directory is /workspace;" in note
    assert "nothing outside it survives the session" in note
    assert "There is no network access" in note
    with_network = environment_note("/workspace", isolated=True, network=True)
    assert "can reach the network" in with_network and "no network" not in with_network


def test_the_environment_note_ends_every_prompt() -> None:
    note = environment_note("/w", isolated=False, network=True)
    preset = options(
        {"system_prompt": {"type": "preset", "preset": "claude_code", "append": "Be brief."}},
        environment=note,
    ).system_prompt
    assert preset == {"type": "preset", "preset": "claude_code", "append": f"Be brief.\n\n{note}"}
    bare_preset = options(
        {"system_prompt": {"type": "preset", "preset": "claude_code"}}, environment=note
    )
    assert bare_preset.system_prompt == {"type": "preset", "preset": "claude_code", "append": note}
    assert options({"system_prompt": "You lead."}, environment=note).system_prompt == (
        f"You lead.\n\n{note}"
    )
    assert options({}, environment=note).system_prompt == note
    team = options(PresetRegistry().get("fullstack-team"), environment=note)
    assert isinstance(team.system_prompt, str) and team.system_prompt.endswith(note)
    assert team.agents
    for name, agent in team.agents.items():
        assert agent.prompt.endswith(note), name
