"""``AgentConfig`` → ``ClaudeAgentOptions``: the one place config fields reach the SDK.

Every field arrives: tools (mapped to the names the installed CLI offers), prompt (a
``claude_code`` preset stays a preset), permission mode, sub-agents as ``agents=``,
MCP servers, ``max_turns`` and ``model``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from claude_agent_sdk import AgentDefinition, ClaudeAgentOptions
from claude_agent_sdk.types import CanUseTool

from ..config import AgentConfig, PresetSystemPrompt

__all__ = ["build_sdk_options", "map_tools"]

#: familiar (2025) tool names → what the bundled CLI offers now
_TOOL_ALIASES: dict[str, list[str]] = {
    "Task": ["Agent"],
    "TodoWrite": ["TaskCreate", "TaskUpdate", "TaskList", "TaskGet"],
}


def map_tools(tools: list[str]) -> list[str]:
    """Map familiar names to the CLI's, keeping order and dropping duplicates."""
    out: list[str] = []
    for tool in tools:
        for name in _TOOL_ALIASES.get(tool, [tool]):
            if name not in out:
                out.append(name)
    return out


def build_sdk_options(
    config: AgentConfig,
    *,
    cwd: str,
    env: dict[str, str],
    can_use_tool: CanUseTool | None = None,
    stderr: Callable[[str], None] | None = None,
    resume: str | None = None,
    user: str | None = None,
) -> ClaudeAgentOptions:
    tools = map_tools(config.allowed_tools)
    system_prompt: Any
    if isinstance(config.system_prompt, PresetSystemPrompt):
        system_prompt = {"type": "preset", "preset": "claude_code"}
        if config.system_prompt.append:
            system_prompt["append"] = config.system_prompt.append
    else:
        system_prompt = config.system_prompt
    agents = {
        name: AgentDefinition(
            description=sub.description,
            prompt=sub.prompt,
            tools=map_tools(sub.tools) if sub.tools is not None else None,
            model=sub.model,
        )
        for name, sub in config.agents.items()
    }
    mcp: dict[str, Any] = {
        name: server.model_dump(exclude_defaults=False) for name, server in config.mcp_servers.items()
    }
    mcp_tools = [t for t in config.allowed_tools if t.startswith("mcp__")]
    return ClaudeAgentOptions(
        tools=[t for t in tools if not t.startswith("mcp__")],
        allowed_tools=tools + [t for t in mcp_tools if t not in tools],
        disallowed_tools=map_tools(config.disallowed_tools),
        system_prompt=system_prompt,
        permission_mode=config.permission_mode,
        agents=agents or None,
        mcp_servers=mcp,
        max_turns=config.max_turns,
        model=config.model,
        cwd=cwd,
        env=env,
        can_use_tool=can_use_tool if config.permission_mode == "default" else None,
        stderr=stderr,
        resume=resume,
        user=user,
        include_partial_messages=True,
        setting_sources=[],
    )
