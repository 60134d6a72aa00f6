"""Agent configs: the pydantic ``AgentConfig`` every preset and inline config must pass.

A config says *what* the agent is (tools, prompt, permission mode, sub-agents, MCP
servers, model, turn limit) and *how much* it may use (``resource_limits``).  How the
fields reach the SDK lives in ``agcluster_jupyter.runner.options``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

__all__ = [
    "KNOWN_TOOLS",
    "AgentConfig",
    "ConfigError",
    "McpHttpServer",
    "McpServer",
    "McpSseServer",
    "McpStdioServer",
    "PermissionMode",
    "PresetSystemPrompt",
    "ResourceLimits",
    "SubAgent",
    "format_validation_error",
    "parse_size",
]

#: The familiar tool names configs may use.  ``Task`` is the CLI's ``Agent`` now and
#: ``TodoWrite`` maps to the CLI's task-tracking tools (see runner/options.py).
KNOWN_TOOLS: frozenset[str] = frozenset(
    {
        "Agent",
        "Bash",
        "BashOutput",
        "Edit",
        "Glob",
        "Grep",
        "KillShell",
        "MultiEdit",
        "NotebookEdit",
        "Read",
        "Task",
        "TaskCreate",
        "TaskGet",
        "TaskList",
        "TaskOutput",
        "TaskStop",
        "TaskUpdate",
        "TodoWrite",
        "WebFetch",
        "WebSearch",
        "Write",
    }
)

PermissionMode = Literal["default", "acceptEdits", "plan", "bypassPermissions"]

_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_MCP_TOOL_RE = re.compile(r"^mcp__[A-Za-z0-9_-]+(__[A-Za-z0-9_*-]+)?$")
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


class ConfigError(ValueError):
    """A config that cannot be used; ``field`` names the dotted path at fault."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


def parse_size(value: str | int) -> int:
    """``"4g"``, ``"512m"``, ``"10GiB"`` or a byte count → bytes."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as '4g' or '512m'")
    if isinstance(value, int):
        if value <= 0:
            raise ValueError("a size must be positive")
        return value
    match = _SIZE_RE.match(value)
    if not match:
        raise ValueError(f"{value!r} is not a size; use a number with k, m, g or t, e.g. '4g'")
    number, unit, _ = match.groups()
    size = int(float(number) * _UNITS[unit.lower()])
    if size <= 0:
        raise ValueError("a size must be positive")
    return size


def _check_tool(name: str) -> str:
    if name in KNOWN_TOOLS or _MCP_TOOL_RE.match(name):
        return name
    known = ", ".join(sorted(KNOWN_TOOLS))
    raise ValueError(f"unknown tool {name!r}; use one of {known}, or mcp__<server>__<tool>")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ResourceLimits(_Strict):
    """CPU (cores), memory and storage.  Sizes accept ``4g``-style strings."""

    cpu: float = Field(default=1.0, gt=0, le=64)
    memory: str = "2g"
    storage: str = "5g"

    @field_validator("memory", "storage")
    @classmethod
    def _size(cls, value: str | int) -> str:
        parse_size(value)
        return str(value)

    @property
    def memory_bytes(self) -> int:
        return parse_size(self.memory)

    @property
    def storage_bytes(self) -> int:
        return parse_size(self.storage)


class PresetSystemPrompt(_Strict):
    """The CLI's own ``claude_code`` system prompt, optionally with text appended."""

    type: Literal["preset"] = "preset"
    preset: Literal["claude_code"] = "claude_code"
    append: str | None = None


class SubAgent(_Strict):
    description: str = Field(min_length=1)
    prompt: str = Field(min_length=1)
    tools: list[str] | None = None
    model: str | None = None

    @field_validator("tools")
    @classmethod
    def _tools(cls, tools: list[str] | None) -> list[str] | None:
        return None if tools is None else [_check_tool(t) for t in tools]


class McpStdioServer(_Strict):
    type: Literal["stdio"] = "stdio"
    command: str = Field(min_length=1)
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)


class McpSseServer(_Strict):
    type: Literal["sse"]
    url: str = Field(pattern=r"^https?://")
    headers: dict[str, str] = Field(default_factory=dict)


class McpHttpServer(_Strict):
    type: Literal["http"]
    url: str = Field(pattern=r"^https?://")
    headers: dict[str, str] = Field(default_factory=dict)


McpServer = Annotated[
    Union[McpStdioServer, McpSseServer, McpHttpServer], Field(discriminator="type")
]


class AgentConfig(_Strict):
    """One agent: what a preset YAML holds and what ``POST agents/launch`` accepts inline."""

    id: str
    name: str = ""
    description: str = ""
    allowed_tools: list[str] = Field(default_factory=list)
    disallowed_tools: list[str] = Field(default_factory=list)
    permission_mode: PermissionMode = "acceptEdits"
    system_prompt: str | PresetSystemPrompt | None = None
    agents: dict[str, SubAgent] = Field(default_factory=dict)
    mcp_servers: dict[str, McpServer] = Field(default_factory=dict)
    resource_limits: ResourceLimits = Field(default_factory=ResourceLimits)
    max_turns: int | None = Field(default=None, ge=1, le=1000)
    model: str | None = None
    #: whether the agent needs the network (WebFetch, WebSearch, remote MCP servers)
    network: bool = False
    #: an optional cap on tokens (input + output) the gateway lets this session use
    token_budget: int | None = Field(default=None, ge=1)

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not _ID_RE.match(value):
            raise ValueError(
                "an id is 1-63 lower-case letters, digits, '-' or '_', starting with a "
                "letter or digit"
            )
        return value

    @field_validator("allowed_tools", "disallowed_tools")
    @classmethod
    def _tools(cls, tools: list[str]) -> list[str]:
        return [_check_tool(t) for t in tools]

    @field_validator("mcp_servers", mode="before")
    @classmethod
    def _mcp_default_type(cls, servers: Any) -> Any:
        # stdio is the SDK's default when ``type`` is left out
        if isinstance(servers, dict):
            return {
                k: ({"type": "stdio", **v} if isinstance(v, dict) and "type" not in v else v)
                for k, v in servers.items()
            }
        return servers

    @field_validator("agents")
    @classmethod
    def _agent_names(cls, agents: dict[str, SubAgent]) -> dict[str, SubAgent]:
        for name in agents:
            if not _ID_RE.match(name):
                raise ValueError(f"sub-agent name {name!r} must look like an id (e.g. 'backend')")
        return agents

    @model_validator(mode="after")
    def _consistent(self) -> AgentConfig:
        if not self.name:
            self.name = self.id.replace("-", " ").title()
        if self.agents and not ({"Task", "Agent"} & set(self.allowed_tools)):
            raise ValueError("sub-agents need 'Task' (or 'Agent') in allowed_tools")
        for server in self.mcp_servers:
            if not re.match(r"^[A-Za-z0-9_-]+$", server):
                raise ValueError(f"MCP server name {server!r} may hold only letters, digits, - _")
        return self

    def summary(self) -> dict[str, Any]:
        """The short form ``GET configs/`` lists."""
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "allowed_tools": list(self.allowed_tools),
            "permission_mode": self.permission_mode,
            "has_mcp_servers": bool(self.mcp_servers),
            "has_sub_agents": bool(self.agents),
            "resource_limits": self.resource_limits.model_dump(),
        }


def format_validation_error(error: ValidationError, prefix: str = "") -> tuple[str, str]:
    """(message, field) for the first problem, with the field as a dotted path."""
    first = error.errors()[0]
    loc = [str(p) for p in first.get("loc", ()) if not str(p).startswith("function-")]
    # discriminated unions add the tag to the location; it is noise for a user
    loc = [p for p in loc if p not in {"stdio", "sse", "http", "str", "PresetSystemPrompt"}]
    field = ".".join([prefix, *loc] if prefix else loc)
    msg = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    more = len(error.errors()) - 1
    text = f"{field}: {msg}" if field else msg
    if more:
        text += f" (and {more} more problem{'s' if more > 1 else ''})"
    return text, field
