"""``AgentConfig`` → ``ClaudeAgentOptions``: the one place config fields reach the SDK.

Every field arrives: tools (mapped to the names the installed CLI offers), prompt (a
``claude_code`` preset stays a preset), permission mode, sub-agents as ``agents=``,
MCP servers, ``max_turns`` and ``model``.

What the CLI does with tools
============================

Observed with claude-agent-sdk 0.2.189 (bundled claude CLI 2.1.332) by running the real
SDK against a capture server and reading the ``tools`` of each ``/v1/messages`` request.
Re-check on every SDK bump (``tests/integration/test_preset_tools.py`` does, per preset).

==============================  ===========================================================
what the SDK is given           what the model receives
==============================  ===========================================================
nothing                         Agent Bash Edit ListAgents Read ReportFindings
                                ScheduleWakeup Skill ToolSearch Workflow Write (+ deferred)
``allowed_tools`` only          that default set (+ Glob Grep when listed); NotebookEdit,
                                WebFetch, WebSearch only via ToolSearch (deferred);
                                ``allowed_tools`` never *adds* a tool, it only
                                auto-approves one
``tools=[...]``                 exactly the listed built-ins (Grep, Glob, NotebookEdit,
                                WebFetch, WebSearch included), no ToolSearch, no Skill
``tools=[]``                    no tools at all
``Task``                        sent as ``Agent`` (the CLI maps the old name)
``TodoWrite``                   never sent; a call answers "TodoWrite is disabled"
TaskCreate/Update/List/Get      the task list (``Task #1 created successfully``)
TaskStop                        stops a *background* task (``KillShell`` maps to it)
TaskOutput, BashOutput,         silently dropped (background Bash re-invokes the
MultiEdit                       model when it exits; MultiEdit is part of Edit)
ExitPlanMode                    never sent, not even in plan mode (plan mode in an SDK
                                session just refuses the tools that write)
DeferredToolPlaceholder         always added when any tool is listed, with
                                ``defer_loading: true`` ("never call this tool"); not in
                                the CLI's own tool list, cannot be disallowed; the API
                                keeps it out of the model's context
``agents=``                     listed in a system message "Available agent types for
                                the Agent tool" (not in the Agent tool's description),
                                next to the built-ins claude, Explore, general-purpose,
                                Plan, statusline-setup; ``Agent(<name>)`` in
                                ``disallowed_tools`` removes one
sub-agent ``tools``             intersected with the session's ``tools=``; ``None`` means
                                every session tool (Agent included)
``extra_args={"agent": X}``     the main thread runs as agents[X]: X's ``tools`` limit
                                it (MCP names too); a text prompt still wins over X's
                                prompt, but X's prompt *replaces* the claude_code preset
MCP servers                     every tool of every server reaches the model, whatever
                                ``tools=``/``allowed_tools`` say; unlisted ones are
                                refused in acceptEdits ("you haven't granted it yet")
``allowed_tools`` in default    ``can_use_tool`` is never asked for them (SDK warns
mode                            ``CanUseToolShadowedWarning``); Read, Glob, Grep, Task*,
                                Agent never ask; Bash, Write, Edit do
``max_turns``, ``model``        ``error_max_turns`` result; ``model`` in the request body
preset + ``append``             the CLI's own long prompt (≈7-28k chars, depends on the
                                tools) with the appended text at its end
==============================  ===========================================================

The mapping, therefore
======================

* ``tools=`` is always set, to the mapped built-in tools, so a config's tools are exactly
  what the model gets (plus the inert deferred placeholder).  ``Task`` → ``Agent``,
  ``TodoWrite`` → ``TaskCreate TaskUpdate TaskList TaskGet`` (``todo_update`` events
  come from those), see ``config.TOOL_ALIASES``.
* Sub-agents that need tools the main agent lacks (a team lead that only delegates):
  the session's ``tools=`` is the union, and the main thread runs as the hidden agent
  ``AgClusterLead`` limited to the config's own tools.  The same trick limits the main
  agent's MCP tools to those it lists.  It is skipped with the claude_code preset prompt
  (it would replace that prompt); config validation refuses the combination that needs it.
* With sub-agents, the CLI's built-in agent types are disallowed, so the model sees
  exactly the config's team; without, ``statusline-setup`` (meaningless in a container)
  is.  The built-ins stay for a plain ``Task`` (code-assistant's Explore, Plan, ...).
* ``allowed_tools`` (auto-approval) is every tool in acceptEdits and bypassPermissions
  (nobody is there to approve), and empty in default mode (every tool that asks goes to
  ``can_use_tool``, which is passed in that mode only) and in plan mode.
* ``setting_sources=[]`` and ``strict_mcp_config`` keep the workspace's own
  ``.claude/`` settings, skills and ``.mcp.json`` out: a workspace is user data.

What the agent is told about where it runs
==========================================

Presets say nothing about the machine: the same preset runs in a container, a pod, a Fly
Machine or (``local``) straight on the user's machine.  The runner appends
:func:`environment_note` to the system prompt (the preset's ``append``, or the text) and
to every sub-agent's prompt, built from facts of this session: the working folder as
the agent sees it (``/workspace`` in a container, the real folder on ``local``), and
from the provider (``AGCLUSTER_ISOLATED``, ``AGCLUSTER_NETWORK`` in the runner's
environment) whether it is isolated and whether its tools reach the network.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from claude_agent_sdk import AgentDefinition, ClaudeAgentOptions
from claude_agent_sdk.types import CanUseTool, SystemPromptPreset

from ..config import MAIN_AGENT_NAME, AgentConfig, PresetSystemPrompt, cli_tool_names
from .jupyter_tools import JUPYTER_SERVER, READ_ONLY_TOOLS, SERVER_APPROVED_TOOLS, tool_names

__all__ = [
    "BUILTIN_AGENTS",
    "CHECKED_AGAINST",
    "ToolPlan",
    "build_sdk_options",
    "environment_note",
    "map_tools",
    "plan_tools",
]

#: the SDK / CLI versions the table above was observed with
CHECKED_AGAINST = "claude-agent-sdk 0.2.189 (claude CLI 2.1.332)"

#: the CLI's own agent types (SystemMessage init ``agents``)
BUILTIN_AGENTS: tuple[str, ...] = (
    "claude",
    "Explore",
    "general-purpose",
    "Plan",
    "statusline-setup",
)
_ALWAYS_HIDDEN_AGENTS = ("statusline-setup",)
_AUTO_APPROVE_MODES = ("acceptEdits", "bypassPermissions")


def map_tools(tools: Iterable[str]) -> list[str]:
    """Map familiar names to the CLI's, keeping order and dropping duplicates."""
    return cli_tool_names(tools)


@dataclass(frozen=True)
class ToolPlan:
    """How a config's tools reach the CLI (all names as the CLI spells them)."""

    #: built-in tools the main agent's model receives
    main: list[str]
    #: MCP tool names the config lists for the main agent (auto-approved)
    mcp: list[str]
    #: ``tools=``: the session's built-in tools (main plus what sub-agents need)
    session: list[str]
    #: per sub-agent tool list (None: every session tool)
    agents: dict[str, list[str] | None]
    #: whether the main thread runs as the hidden ``AgClusterLead`` agent
    lead: bool
    #: the agent types the Agent tool offers (empty without Agent)
    agent_types: list[str]

    def model_tools(self) -> list[str]:
        """The built-in tool names the model receives, sorted (MCP tools not included:
        those depend on what the servers offer)."""
        return sorted(self.main)


def _builtin(tools: Iterable[str], denied: set[str]) -> list[str]:
    return [t for t in map_tools(tools) if not t.startswith("mcp__") and t not in denied]


def plan_tools(config: AgentConfig) -> ToolPlan:
    """Decide ``tools=``, the sub-agents' tools and whether the lead agent is needed."""
    denied = set(map_tools(config.disallowed_tools))
    main = _builtin(config.allowed_tools, denied)
    mcp = [t for t in config.allowed_tools if t.startswith("mcp__") and t not in denied]
    agents: dict[str, list[str] | None] = {
        name: None if sub.tools is None else [t for t in map_tools(sub.tools) if t not in denied]
        for name, sub in config.agents.items()
    }
    session = list(main)
    for tools in agents.values():
        session += [t for t in _builtin(tools or [], denied) if t not in session]
    preset = isinstance(config.system_prompt, PresetSystemPrompt)
    lead = not preset and (session != main or bool(mcp))
    if "Agent" in session:
        types = list(config.agents) if config.agents else list(BUILTIN_AGENTS)
        types = [t for t in types if t not in _ALWAYS_HIDDEN_AGENTS or t in config.agents]
    else:
        types = []
    return ToolPlan(
        main=main, mcp=mcp, session=session, agents=agents, lead=lead, agent_types=types
    )


def environment_note(workspace: str, *, isolated: bool, network: bool) -> str:
    """What the agent is told about where it runs: isolated or not, its working folder
    (as it sees it), network or none.  Appended to the system prompt of every session."""
    sentences = []
    if isolated:
        sentences.append(
            "You run in an isolated sandbox of your own (a container or a VM): the user's "
            "machine and other sessions are out of your reach."
        )
    else:
        sentences.append(
            "You are NOT isolated: there is no container or sandbox. You run directly on "
            "the user's machine, as an ordinary process that can read what its user can, "
            "so keep to your working directory, and do not change or delete anything "
            "outside it unless the user asks you to."
        )
    keeps = "what the user keeps: they browse and download them from Jupyter"
    if isolated:
        keeps += "; nothing outside it survives the session"
    sentences.append(
        f"Your working directory is {workspace}; the files you leave there are {keeps}."
    )
    if network:
        sentences.append("Your tools can reach the network.")
    else:
        sentences.append(
            "There is no network access: do not plan on downloading or installing "
            "anything; use what is installed, and say so when something is missing."
        )
    return "# Where you run\n\n" + " ".join(sentences)


def _with_note(text: str | None, note: str | None) -> str | None:
    if not note:
        return text
    return f"{text.rstrip()}\n\n{note}" if text else note


def _system_prompt(
    config: AgentConfig, environment: str | None = None
) -> str | SystemPromptPreset | None:
    prompt = config.system_prompt
    if isinstance(prompt, PresetSystemPrompt):
        preset: SystemPromptPreset = {"type": "preset", "preset": "claude_code"}
        append = _with_note(prompt.append, environment)
        if append:
            preset["append"] = append
        return preset
    return _with_note(prompt, environment)


def build_sdk_options(
    config: AgentConfig,
    *,
    cwd: str,
    env: dict[str, str],
    can_use_tool: CanUseTool | None = None,
    stderr: Callable[[str], None] | None = None,
    resume: str | None = None,
    user: str | int | None = None,
    environment: str | None = None,
    jupyter: Any | None = None,
    jupyter_kernel: bool = False,
) -> ClaudeAgentOptions:
    """The SDK options for one session of ``config`` working in ``cwd``.

    ``can_use_tool`` is passed on in ``default`` permission mode only; ``user`` runs the
    CLI as that (non-root) user; ``environment`` (:func:`environment_note`) is appended to
    the system prompt and to each sub-agent's prompt.  ``jupyter`` (an SDK MCP server,
    ``runner/jupyter_tools.py``) adds the notebook tools: listed in ``tools=`` so the model
    gets them directly (not deferred behind ToolSearch), auto-approved where every tool
    is, and in plan mode the read-only ones; with ``jupyter_kernel`` the kernel tools too,
    allowed in every mode (the Jupyter server asks the user about them itself).
    """
    plan = plan_tools(config)
    notebook_tools = tool_names(kernel=jupyter_kernel) if jupyter is not None else []
    system_prompt = _system_prompt(config, environment)

    agents: dict[str, AgentDefinition] = {
        name: AgentDefinition(
            description=sub.description,
            prompt=_with_note(sub.prompt, environment) or "",
            tools=plan.agents[name],
            model=sub.model,
        )
        for name, sub in config.agents.items()
    }
    disallowed = map_tools(config.disallowed_tools)
    if "Agent" in plan.session:
        disallowed += [
            f"Agent({name})"
            for name in BUILTIN_AGENTS
            if name not in plan.agent_types and name not in config.agents
        ]
    extra_args: dict[str, str | None] = {}
    if plan.lead:
        lead_tools = plan.main + (plan.mcp or [f"mcp__{name}" for name in config.mcp_servers])
        lead_tools += notebook_tools
        agents[MAIN_AGENT_NAME] = AgentDefinition(
            description="The main agent of this session (not a sub-agent).",
            # a text system prompt wins over this one; None means no prompt either way
            prompt=system_prompt if isinstance(system_prompt, str) else "",
            tools=lead_tools,
        )
        disallowed.append(f"Agent({MAIN_AGENT_NAME})")
        extra_args["agent"] = MAIN_AGENT_NAME

    if config.permission_mode in _AUTO_APPROVE_MODES:
        allowed = plan.session + plan.mcp
        for tools in plan.agents.values():
            allowed += [t for t in tools or [] if t.startswith("mcp__") and t not in allowed]
        allowed += notebook_tools
    elif config.permission_mode == "plan":
        allowed = [
            f"mcp__{JUPYTER_SERVER}__{t}"
            for t in sorted(READ_ONLY_TOOLS | (SERVER_APPROVED_TOOLS if jupyter_kernel else set()))
            if jupyter
        ]
    else:
        allowed = []  # can_use_tool answers (the notebook reads without asking)

    mcp: dict[str, Any] = {name: server.model_dump() for name, server in config.mcp_servers.items()}
    if jupyter is not None:
        mcp[JUPYTER_SERVER] = jupyter
    return ClaudeAgentOptions(
        tools=plan.session + notebook_tools,
        allowed_tools=allowed,
        disallowed_tools=disallowed,
        system_prompt=system_prompt,
        permission_mode=config.permission_mode,
        agents=agents or None,
        mcp_servers=mcp,
        strict_mcp_config=True,
        max_turns=config.max_turns,
        model=config.model,
        cwd=cwd,
        env=env,
        can_use_tool=can_use_tool if config.permission_mode == "default" else None,
        stderr=stderr,
        resume=resume,
        # a uid works too (subprocess takes either); the SDK's hint says str
        user=user,  # type: ignore[arg-type]
        include_partial_messages=True,
        setting_sources=[],
        extra_args=extra_args,
    )
