"""Agent configs: the pydantic ``AgentConfig`` every preset and inline config must pass.

A config says *what* the agent is (tools, prompt, permission mode, sub-agents, MCP
servers, model, turn limit) and *how much* it may use (``resource_limits``).  How the
fields reach the SDK lives in ``agcluster_jupyter.runner.options``; the table of tool
names the installed CLI really offers (``TOOL_ALIASES``) lives here so validation and
the mapping agree without this module importing the SDK.

Validation errors name the field at fault as a dotted path (``resource_limits.memory``,
``agents.frontend.tools.2``): use :func:`format_validation_error`.

Size: the ``AgentConfig`` models and their validators, which are one schema.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .units import parse_size

__all__ = [
    "KNOWN_TOOLS",
    "MAIN_AGENT_NAME",
    "MAX_CONFIG_JSON_BYTES",
    "TOOL_ALIASES",
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
    "cli_tool_names",
    "format_validation_error",
    "parse_size",
]

#: Familiar (2025, AgCluster) tool names → the names the bundled CLI offers now.
#: Checked against claude-agent-sdk 0.2.189 / claude CLI 2.1.332; see runner/options.py
#: for what was observed.  Names not in this table pass through unchanged.
TOOL_ALIASES: dict[str, tuple[str, ...]] = {
    # the sub-agent tool was renamed
    "Task": ("Agent",),
    # TodoWrite answers "TodoWrite is disabled"; task tracking is the Task* tools now
    "TodoWrite": ("TaskCreate", "TaskUpdate", "TaskList", "TaskGet"),
    # MultiEdit was folded into Edit; KillShell is TaskStop (the CLI maps it too)
    "MultiEdit": ("Edit",),
    "KillShell": ("TaskStop",),
    # background output arrives as a notification to the Bash caller now; the CLI
    # drops these names silently, so they grant nothing
    "BashOutput": (),
    "TaskOutput": (),
}

#: Every tool name a config may use: the familiar names plus the CLI's current ones.
KNOWN_TOOLS: frozenset[str] = frozenset(
    {
        "Agent",
        "Bash",
        "BashOutput",
        "Edit",
        "Glob",
        "Grep",
        "KillShell",
        "Monitor",
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

#: The sub-agent name the runner gives the main thread when sub-agents need tools the
#: main agent lacks (see runner/options.py).  Not a valid sub-agent name on purpose.
MAIN_AGENT_NAME = "AgClusterLead"

#: Tools that only make sense with network access.
_NETWORK_TOOLS = frozenset({"WebFetch", "WebSearch"})

PermissionMode = Literal["default", "acceptEdits", "plan", "bypassPermissions"]

_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_SERVER_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_MCP_TOOL_RE = re.compile(r"^mcp__([A-Za-z0-9_-]+?)(?:__([A-Za-z0-9_*-]+))?$")
_MODEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@/\[\]-]{0,127}$")
_MIN_MEMORY = 256 * 1024**2  # the CLI alone peaks at ~230 MB
_MIN_STORAGE = 64 * 1024**2
_MAX_SIZE = 1024**4
#: a runner gets its config as JSON in one environment variable, and Linux caps one
#: variable at 128 KiB (MAX_ARG_STRLEN): bigger would fail the runner's exec
MAX_CONFIG_JSON_BYTES = 100 * 1024

# discriminator tags pydantic puts into error locations; never shown to users
_TAGS = frozenset({"prompt:text", "prompt:preset", "mcp:stdio", "mcp:sse", "mcp:http"})


class ConfigError(ValueError):
    """A config that cannot be used; ``field`` names the dotted path at fault."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


def cli_tool_names(tools: Iterable[str]) -> list[str]:
    """Familiar tool names → the CLI's, keeping order and dropping duplicates."""
    out: list[str] = []
    for tool in tools:
        for name in TOOL_ALIASES.get(tool, (tool,)):
            if name not in out:
                out.append(name)
    return out


def _check_tools(tools: list[str]) -> list[str]:
    """Known names only (``field`` is the index at fault); duplicates dropped."""
    out: list[str] = []
    for i, tool in enumerate(tools):
        if not (tool in KNOWN_TOOLS or _MCP_TOOL_RE.match(tool)):
            known = ", ".join(sorted(KNOWN_TOOLS))
            raise ConfigError(
                f"unknown tool {tool!r}; use one of {known}, or mcp__<server>__<tool>",
                field=str(i),
            )
        if tool not in out:
            out.append(tool)
    return out


def _mcp_server_of(tool: str) -> str | None:
    match = _MCP_TOOL_RE.match(tool)
    return match.group(1) if match and tool.startswith("mcp__") else None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ResourceLimits(_Strict):
    """CPU (cores), memory and storage.  Sizes accept ``4g``-style strings or bytes."""

    cpu: float = Field(default=1.0, gt=0, le=64)
    memory: str = "2g"
    storage: str = "5g"

    @field_validator("memory", "storage", mode="before")
    @classmethod
    def _size(cls, value: Any, info: ValidationInfo) -> str:
        size = parse_size(value)
        low = _MIN_MEMORY if info.field_name == "memory" else _MIN_STORAGE
        if size < low:
            raise ValueError(
                f"{value!r} is too small; at least {low // 1024**2}m"
                + (" (the claude CLI alone needs about 250 MB)" if low == _MIN_MEMORY else "")
            )
        if size > _MAX_SIZE:
            raise ValueError(f"{value!r} is too large; at most 1t")
        return str(value).strip()

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


def _prompt_kind(value: Any) -> str | None:
    if isinstance(value, str):
        return "prompt:text"
    if isinstance(value, (dict, PresetSystemPrompt)):
        return "prompt:preset"
    return None


SystemPrompt = Annotated[
    Annotated[str, Tag("prompt:text")] | Annotated[PresetSystemPrompt, Tag("prompt:preset")],
    Discriminator(
        _prompt_kind,
        custom_error_type="system_prompt",
        custom_error_message=(
            "a system prompt is text, or {type: preset, preset: claude_code, append: <text>}"
        ),
    ),
]


class SubAgent(_Strict):
    """A sub-agent the main agent can hand work to through ``Task``."""

    description: str = Field(min_length=1)
    prompt: str = Field(min_length=1)
    #: None: every tool the session has
    tools: list[str] | None = None
    model: str | None = None

    @field_validator("tools")
    @classmethod
    def _tools(cls, tools: list[str] | None) -> list[str] | None:
        return None if tools is None else _check_tools(tools)


class McpStdioServer(_Strict):
    type: Literal["stdio"] = "stdio"
    command: str = Field(min_length=1)
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)


class McpSseServer(_Strict):
    type: Literal["sse"]
    url: str = Field(pattern=r"^https?://\S+$")
    headers: dict[str, str] = Field(default_factory=dict)


class McpHttpServer(_Strict):
    type: Literal["http"]
    url: str = Field(pattern=r"^https?://\S+$")
    headers: dict[str, str] = Field(default_factory=dict)


def _mcp_kind(value: Any) -> str | None:
    kind = value.get("type", "stdio") if isinstance(value, dict) else getattr(value, "type", None)
    return f"mcp:{kind}" if kind in ("stdio", "sse", "http") else None


McpServer = Annotated[
    Annotated[McpStdioServer, Tag("mcp:stdio")]
    | Annotated[McpSseServer, Tag("mcp:sse")]
    | Annotated[McpHttpServer, Tag("mcp:http")],
    Discriminator(
        _mcp_kind,
        custom_error_type="mcp_server",
        custom_error_message=(
            "an MCP server is {type: stdio, command, args, env} (the default type), "
            "{type: sse, url, headers} or {type: http, url, headers}"
        ),
    ),
]


class AgentConfig(_Strict):
    """One agent: what a preset YAML holds and what ``POST agents/launch`` accepts inline."""

    id: str
    name: str = ""
    description: str = ""
    #: the tools the agent has; familiar names are mapped to the CLI's (TOOL_ALIASES)
    allowed_tools: list[str] = Field(default_factory=list)
    #: tools taken away again (also from sub-agents)
    disallowed_tools: list[str] = Field(default_factory=list)
    permission_mode: PermissionMode = "acceptEdits"
    #: the user's kernels through the jupyter tools: deny (not offered), ask (every
    #: run_cell/run_code is a permission request showing the code), allow (no prompts)
    kernel_access: Literal["deny", "ask", "allow"] = "ask"
    system_prompt: SystemPrompt | None = None
    agents: dict[str, SubAgent] = Field(default_factory=dict)
    mcp_servers: dict[str, McpServer] = Field(default_factory=dict)
    resource_limits: ResourceLimits = Field(default_factory=ResourceLimits)
    max_turns: int | None = Field(default=None, ge=1, le=1000)
    model: str | None = None
    #: whether the agent needs the network (WebFetch, WebSearch, remote MCP servers);
    #: when left out it is inferred from those
    network: bool = False
    #: an optional cap on tokens (input + output) the gateway lets this session use
    token_budget: int | None = Field(default=None, ge=1)
    #: an optional cap on what this session's model calls may cost, in USD
    cost_budget_usd: float | None = Field(default=None, gt=0, le=100_000)

    @model_validator(mode="before")
    @classmethod
    def _infer_network(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "network" in data:
            return data
        # before validation anything may come: a wrong type is the field's error, later
        raw = data.get("allowed_tools")
        tools: list[Any] = list(raw) if isinstance(raw, list) else []
        agents = data.get("agents")
        if isinstance(agents, dict):
            for sub in agents.values():
                if isinstance(sub, dict) and isinstance(sub.get("tools"), list):
                    tools.extend(sub["tools"])
        servers = data.get("mcp_servers")
        remote = isinstance(servers, dict) and any(
            isinstance(s, dict) and s.get("type") in ("sse", "http") for s in servers.values()
        )
        needs = remote or any(isinstance(t, str) and t in _NETWORK_TOOLS for t in tools)
        return {**data, "network": needs}

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not _ID_RE.match(value):
            raise ValueError(
                f"{value!r} is not an id: use 1-63 lower-case letters, digits, '-' or '_', "
                "starting with a letter or digit"
            )
        return value

    @field_validator("allowed_tools", "disallowed_tools")
    @classmethod
    def _tools(cls, tools: list[str]) -> list[str]:
        return _check_tools(tools)

    @field_validator("model")
    @classmethod
    def _model(cls, value: str | None) -> str | None:
        if value is not None and not _MODEL_RE.match(value):
            raise ValueError(f"{value!r} is not a model name (e.g. 'claude-sonnet-4-5')")
        return value

    @field_validator("agents")
    @classmethod
    def _agent_names(cls, agents: dict[str, SubAgent]) -> dict[str, SubAgent]:
        for name in agents:
            if not _ID_RE.match(name):
                raise ConfigError(
                    f"sub-agent name {name!r} must look like an id (e.g. 'backend')",
                    field=name,
                )
        return agents

    @field_validator("mcp_servers")
    @classmethod
    def _server_names(cls, servers: dict[str, Any]) -> dict[str, Any]:
        for name in servers:
            if not _SERVER_RE.match(name):
                raise ConfigError(
                    f"MCP server name {name!r} may hold only letters, digits, '-' and '_'",
                    field=name,
                )
            if name == "jupyter":
                raise ConfigError(
                    "MCP server name 'jupyter' is reserved: the Jupyter server offers its "
                    "notebook tools under it; name yours differently",
                    field=name,
                )
        return servers

    @model_validator(mode="after")
    def _consistent(self) -> AgentConfig:
        if not self.name:
            self.name = self.id.replace("-", " ").replace("_", " ").title()
        try:
            size = len(self.model_dump_json().encode("utf-8"))
        except ValueError:  # pydantic's serialization error; JSON allows "\ud800", UTF-8 not
            raise ConfigError(
                "the config's text must be valid Unicode (no lone surrogates)"
            ) from None
        if size > MAX_CONFIG_JSON_BYTES:
            raise ConfigError(
                f"the config is {size} bytes as JSON; at most {MAX_CONFIG_JSON_BYTES} "
                "(shorten the system prompt or the sub-agents' prompts)"
            )
        if self.agents and not ({"Task", "Agent"} & set(self.allowed_tools)):
            raise ConfigError(
                "sub-agents need 'Task' (or 'Agent') in allowed_tools",
                field="allowed_tools",
            )
        where: list[tuple[str, list[str]]] = [("allowed_tools", self.allowed_tools)]
        where += [(f"agents.{n}.tools", a.tools or []) for n, a in self.agents.items()]
        for path, tools in where:
            for i, tool in enumerate(tools):
                server = _mcp_server_of(tool)
                if server is not None and server not in self.mcp_servers:
                    raise ConfigError(
                        f"{tool!r} names MCP server {server!r}, which is not in mcp_servers",
                        field=f"{path}.{i}",
                    )
        if isinstance(self.system_prompt, PresetSystemPrompt):
            # The CLI gives sub-agents at most the session's tools.  With a text prompt
            # the runner widens the session and keeps the main agent to its own tools
            # (runner/options.py); that trick replaces the claude_code preset prompt,
            # so with the preset a sub-agent cannot have more than the main agent.
            main = set(cli_tool_names(self.allowed_tools))
            for name, sub in self.agents.items():
                extra = [
                    t
                    for t in cli_tool_names(sub.tools or [])
                    if t not in main and not t.startswith("mcp__")
                ]
                if extra:
                    raise ConfigError(
                        f"sub-agent {name!r} needs {', '.join(extra)}, which the main agent "
                        "lacks; with the claude_code preset prompt a sub-agent can only "
                        "use the main agent's tools: add them to allowed_tools, or use a "
                        "text system_prompt",
                        field=f"agents.{name}.tools",
                    )
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
            "system_prompt": self.prompt_summary(),
        }

    def prompt_summary(self) -> str:
        """The system prompt as one text a person can read on a preset card."""
        prompt = self.system_prompt
        if prompt is None:
            return ""  # the SDK then sends an empty system prompt
        if isinstance(prompt, str):
            return prompt
        appended = f", and: {prompt.append}" if prompt.append else ""
        return f"Claude Code's own system prompt{appended}"


def format_validation_error(error: ValidationError, prefix: str = "") -> tuple[str, str]:
    """(message, field) for the first problem, with the field as a dotted path.

    ``prefix`` is put in front of the path, e.g. ``config`` for a launch body.
    """
    first = error.errors()[0]
    loc = [str(p) for p in first.get("loc", ()) if not str(p).startswith("function-")]
    # discriminated unions add their tag to the location; it is noise for a user
    loc = [p for p in loc if p not in _TAGS]
    cause = (first.get("ctx") or {}).get("error")
    if isinstance(cause, ConfigError) and cause.field:
        loc = [*loc, cause.field]
    if first.get("type") == "extra_forbidden" and loc:
        msg = f"unknown field {loc[-1]!r}"
    else:
        msg = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    field = ".".join([prefix, *loc] if prefix else loc)
    more = len(error.errors()) - 1
    text = f"{field}: {msg}" if field else msg
    if more:
        text += f" (and {more} more problem{'s' if more > 1 else ''})"
    return text, field
