"""The script model of the scripted Anthropic model, and the pure choice of a reply.

Nothing here does I/O: :func:`choose_reply` maps (script, request body) to a
:class:`Reply`, so step choice is unit tested with plain conversations and the same
script serves concurrent sessions, retries and resumed conversations alike. The format is
documented in :mod:`agcluster_jupyter.testing`.

Size: the script format's models and the one pure reply chooser are read together, as a
spec; they have no other users.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from ..runner.protocol import DENIAL_RE

__all__ = [
    "INTERRUPT_MARKERS",
    "Block",
    "Fault",
    "Refusal",
    "Reply",
    "Scenario",
    "Script",
    "ScriptError",
    "TextBlock",
    "ThinkingBlock",
    "ToolUseBlock",
    "choose_reply",
    "conversation_position",
    "created_task_ids",
    "is_structured_request",
    "last_tool_result",
    "latest_prompt",
    "load_script",
    "offered_tools",
    "parse_script",
    "refusal_text",
    "refused_calls",
    "title_for",
    "working_directory",
]

# Text the CLI adds to user messages that is not something the user typed.
INTERRUPT_MARKERS = (
    "[Request interrupted by user for tool use]",
    "[Request interrupted by user]",
)
_REMINDER_RE = re.compile(r"<system-reminder>.*?</system-reminder>", re.DOTALL)
_CWD_RE = re.compile(r"Primary working directory: (\S+)")
_SESSION_RE = re.compile(r"<session>(.*?)</session>", re.DOTALL)
_TAG_RE = re.compile(r"<[^>]+>")
_TASK_CREATED_RE = re.compile(r"Task #(\S+) created")
DEFAULT_FINAL_TEXT = "Done."
#: the claude CLI's own words for a call its user refused (interactive sessions)
CLI_REFUSAL = "The user doesn't want to proceed with this tool use"
#: variables every reply has; a regex group may not take these names
BUILTIN_VARIABLES = ("prompt", "cwd", "result")
#: how much of a tool result ``{result}`` carries
RESULT_LIMIT = 2000
FALLBACK_TEXT = "(scripted model) I have no script for that, but I heard you say: {prompt}"

JSON = dict[str, Any]


class ScriptError(ValueError):
    """A script that cannot be parsed; the message names the scenario and step at fault."""


@dataclass(frozen=True)
class TextBlock:
    text: str


@dataclass(frozen=True)
class ThinkingBlock:
    thinking: str


@dataclass(frozen=True)
class ToolUseBlock:
    name: str
    input: JSON
    # Dropped when the request does not offer the tool, so one demo script works
    # whichever tools a preset enables.
    optional: bool = False


Block = TextBlock | ThinkingBlock | ToolUseBlock


@dataclass(frozen=True)
class Fault:
    """What should go wrong while serving one step; all fields combine."""

    status: int | None = None  # answer with this HTTP error instead of the content
    broken_after: int | None = None  # close the connection after this many deltas
    delay: float = 0.0  # seconds to sleep before each delta
    times: int | None = None  # serve the fault this often per step, then serve normally
    message: str = ""  # the error body's message (default: "scripted fault: HTTP <status>")

    @property
    def is_active(self) -> bool:
        return self.status is not None or self.broken_after is not None or self.delay > 0


@dataclass(frozen=True)
class Scenario:
    steps: tuple[tuple[Block | Fault, ...], ...]
    match: tuple[str, ...] = ()  # empty: matches every prompt
    final: str = DEFAULT_FINAL_TEXT
    name: str = ""

    def matches(self, prompt: str) -> bool:
        return self.groups(prompt) is not None

    def groups(self, prompt: str) -> dict[str, str] | None:
        """None if the scenario does not match ``prompt``; else the named groups of the
        ``re:`` pattern that matched (an unmatched group is ""), the variables it adds."""
        if not self.match:
            return {}
        for pattern in self.match:
            found = _matches(pattern, prompt)
            if found is not None:
                return found
        return None


@dataclass(frozen=True)
class Script:
    scenarios: tuple[Scenario, ...] = ()

    def __add__(self, other: Script) -> Script:
        return Script(self.scenarios + other.scenarios)


@dataclass(frozen=True)
class Reply:
    """One model response: content blocks plus the fault to apply while serving it."""

    blocks: tuple[Block, ...]
    fault: Fault = field(default_factory=Fault)
    scenario: str = ""
    step: int = 0  # index into the scenario's steps; len(steps) for the final text
    kind: Literal["script", "final", "fallback", "structured", "refused"] = "script"

    @property
    def stop_reason(self) -> str:
        return "tool_use" if any(isinstance(b, ToolUseBlock) for b in self.blocks) else "end_turn"


def _matches(pattern: str, prompt: str) -> dict[str, str] | None:
    if pattern.startswith("re:"):
        found = re.search(pattern[3:], prompt)
        if found is None:
            return None
        return {k: v or "" for k, v in found.groupdict().items()}
    return {} if pattern.casefold() in prompt.casefold() else None


# -- parsing ---------------------------------------------------------------------------


def load_script(source: str | Path) -> Script:
    """Read a script from a YAML or JSON file (JSON is YAML, so one loader does both)."""
    path = Path(source)
    return parse_script(yaml.safe_load(path.read_text(encoding="utf-8")), origin=str(path))


def parse_script(data: Any, origin: str = "script") -> Script:
    """Build a :class:`Script` from YAML/JSON data, Python dicts or an existing Script."""
    if isinstance(data, Script):
        return data
    if isinstance(data, Scenario):
        return Script((data,))
    if data is None:
        return Script()
    if isinstance(data, Mapping):
        if "scenarios" in data:
            data = data["scenarios"]
        else:
            data = [data]  # a single scenario
    if isinstance(data, (str, bytes)) or not isinstance(data, Iterable):
        raise ScriptError(f"{origin}: expected a list of scenarios, got {type(data).__name__}")
    return Script(tuple(_parse_scenario(s, f"{origin}[{i}]") for i, s in enumerate(data)))


def _parse_scenario(data: Any, where: str) -> Scenario:
    if isinstance(data, Scenario):
        return data
    if not isinstance(data, Mapping):
        raise ScriptError(f"{where}: a scenario is a mapping with 'match' and 'steps'")
    unknown = set(data) - {"match", "steps", "final", "name"}
    if unknown:
        raise ScriptError(f"{where}: unknown keys {sorted(unknown)}")
    match = data.get("match")
    if match is None:
        patterns: tuple[str, ...] = ()
    elif isinstance(match, str):
        patterns = (match,)
    elif isinstance(match, list) and all(isinstance(m, str) for m in match):
        patterns = tuple(match)
    else:
        raise ScriptError(f"{where}.match: a string or a list of strings")
    for p in patterns:
        if p.startswith("re:"):
            try:
                compiled = re.compile(p[3:])
            except re.error as e:
                raise ScriptError(f"{where}.match: bad regex {p!r}: {e}") from e
            taken = sorted(set(compiled.groupindex) & set(BUILTIN_VARIABLES))
            if taken:
                raise ScriptError(f"{where}.match: group name {taken[0]!r} is a built-in")
    raw_steps = data.get("steps", [])
    if not isinstance(raw_steps, list):
        raise ScriptError(f"{where}.steps: a list of steps")
    steps = tuple(_parse_step(s, f"{where}.steps[{i}]") for i, s in enumerate(raw_steps))
    final = data.get("final", DEFAULT_FINAL_TEXT)
    if not isinstance(final, str):
        raise ScriptError(f"{where}.final: a string")
    name = data.get("name") or (patterns[0] if patterns else "default")
    return Scenario(steps=steps, match=patterns, final=final, name=str(name))


def _parse_step(data: Any, where: str) -> tuple[Block | Fault, ...]:
    # A lone block is accepted as a one-block step; so is a bare string as text.
    items = data if isinstance(data, list) else [data]
    return tuple(_parse_block(b, f"{where}[{i}]") for i, b in enumerate(items))


def _parse_block(data: Any, where: str) -> Block | Fault:
    if isinstance(data, (TextBlock, ThinkingBlock, ToolUseBlock, Fault)):
        return data
    if isinstance(data, str):
        return TextBlock(data)
    if not isinstance(data, Mapping):
        raise ScriptError(f"{where}: a block is a mapping such as {{text: ...}}")
    keys = set(data)
    if keys == {"text"} and isinstance(data["text"], str):
        return TextBlock(data["text"])
    if keys == {"thinking"} and isinstance(data["thinking"], str):
        return ThinkingBlock(data["thinking"])
    if keys == {"tool_use"}:
        return _parse_tool_use(data["tool_use"], where)
    if keys and keys <= {"error", "broken_stream", "delay", "times", "message"}:
        return _parse_fault(data, where)
    raise ScriptError(
        f"{where}: unknown block {dict(data)!r}; expected text, thinking, tool_use, "
        "error, broken_stream or delay"
    )


def _parse_tool_use(data: Any, where: str) -> ToolUseBlock:
    if not isinstance(data, Mapping) or not isinstance(data.get("name"), str):
        raise ScriptError(f"{where}.tool_use: needs a 'name'")
    unknown = set(data) - {"name", "input", "optional"}
    if unknown:
        raise ScriptError(f"{where}.tool_use: unknown keys {sorted(unknown)}")
    tool_input = data.get("input", {})
    if not isinstance(tool_input, Mapping):
        raise ScriptError(f"{where}.tool_use.input: a mapping")
    return ToolUseBlock(data["name"], dict(tool_input), bool(data.get("optional", False)))


def _parse_fault(data: Mapping[str, Any], where: str) -> Fault:
    status = data.get("error")
    if status is not None and (not isinstance(status, int) or not 400 <= status <= 599):
        raise ScriptError(f"{where}.error: an HTTP error status such as 429")
    broken = data.get("broken_stream")
    broken_after: int | None
    if broken is None or broken is False:
        broken_after = None
    elif broken is True:
        broken_after = 1
    elif isinstance(broken, int) and broken >= 0:
        broken_after = broken
    else:
        raise ScriptError(f"{where}.broken_stream: true or a number of deltas")
    delay = data.get("delay", 0.0)
    if not isinstance(delay, (int, float)) or delay < 0:
        raise ScriptError(f"{where}.delay: seconds, >= 0")
    times = data.get("times")
    if times is not None and (not isinstance(times, int) or times < 1):
        raise ScriptError(f"{where}.times: a positive count")
    message = data.get("message", "")
    if not isinstance(message, str) or (message and status is None):
        raise ScriptError(f"{where}.message: a string, next to an 'error' status")
    return Fault(
        status=status, broken_after=broken_after, delay=float(delay), times=times, message=message
    )


# -- reading the conversation ----------------------------------------------------------


def _content_blocks(message: Mapping[str, Any]) -> list[JSON]:
    content = message.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, list):
        return [b for b in content if isinstance(b, dict)]
    return []


def _typed_text(message: Mapping[str, Any]) -> str | None:
    """The text a user typed in this message, or None if it holds none (tool results,
    reminders, interrupt markers)."""
    parts = []
    for block in _content_blocks(message):
        if block.get("type") != "text":
            continue
        text = _REMINDER_RE.sub("", str(block.get("text", "")))
        for marker in INTERRUPT_MARKERS:
            text = text.replace(marker, "")
        if text.strip():
            parts.append(text.strip())
    return "\n".join(parts) if parts else None


def _prompt_index(messages: Sequence[Mapping[str, Any]]) -> int:
    """Index of the latest user message with typed text, -1 if none."""
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].get("role") == "user" and _typed_text(messages[index]) is not None:
            return index
    return -1


def conversation_position(messages: Sequence[Mapping[str, Any]]) -> tuple[str, int]:
    """(latest real user prompt, tool-result rounds after it).

    A round is one model response answered by the CLI, counted as the runs of assistant
    messages after the prompt; that is the index of the step to play next.
    """
    index = _prompt_index(messages)
    if index < 0:
        return "", 0
    rounds, previous = 0, ""
    for later in messages[index + 1 :]:
        role = later.get("role")
        if role == "assistant" and previous != "assistant":
            rounds += 1
        if role in ("user", "assistant"):  # a "system" entry does not split a run
            previous = str(role)
    return _typed_text(messages[index]) or "", rounds


def created_task_ids(messages: Sequence[Mapping[str, Any]]) -> list[str]:
    """Ids of the tasks TaskCreate made since the latest prompt, in order (for
    ``{task:N}``), read from its results ("Task #7 created successfully: ...")."""
    prompt_index = _prompt_index(messages)
    ids: list[str] = []
    for message in messages[prompt_index + 1 :]:
        for block in _content_blocks(message):
            if block.get("type") != "tool_result":
                continue
            for text in _result_texts(block):
                found = _TASK_CREATED_RE.match(text)
                if found:
                    ids.append(found.group(1))
    return ids


def _result_texts(block: Mapping[str, Any]) -> list[str]:
    content = block.get("content")
    if isinstance(content, str):
        return [content]
    return [str(c.get("text", "")) for c in content or [] if isinstance(c, dict)]


def _latest_results(messages: Sequence[Mapping[str, Any]]) -> list[JSON]:
    """The tool results the model is asked to answer now: those of the latest message,
    when it is a user message after the prompt (its ``system`` entries skipped)."""
    prompt_index = _prompt_index(messages)
    for index in range(len(messages) - 1, prompt_index, -1):
        role = messages[index].get("role")
        if role == "system":
            continue
        if role != "user":
            return []
        return [b for b in _content_blocks(messages[index]) if b.get("type") == "tool_result"]
    return []


def last_tool_result(messages: Sequence[Mapping[str, Any]]) -> str:
    """The text of the last tool result of the latest step (for ``{result}``), "" if the
    model is not answering tool results; cut to :data:`RESULT_LIMIT` characters."""
    results = _latest_results(messages)
    if not results:
        return ""
    text = "\n".join(_result_texts(results[-1])).strip()
    return text if len(text) <= RESULT_LIMIT else text[:RESULT_LIMIT] + " ..."


@dataclass(frozen=True)
class Refusal:
    """A tool call of the latest step that was not permitted to run."""

    tool: str
    input: JSON
    reason: str = ""  # why, when the denial says (the user's message, a timeout)


def refused_calls(messages: Sequence[Mapping[str, Any]]) -> list[Refusal]:
    """The calls of the latest step that were denied permission (not those that ran and
    failed): error results worded as the runner words a denial (``Permission to use
    Write was denied: ...``) or as the CLI's own prompt does."""
    prompt_index = _prompt_index(messages)
    calls: dict[str, JSON] = {}
    for message in messages[prompt_index + 1 :]:
        if message.get("role") == "assistant":
            for block in _content_blocks(message):
                if block.get("type") == "tool_use":
                    calls[str(block.get("id"))] = block
    refused = []
    for result in _latest_results(messages):
        if not result.get("is_error"):
            continue
        text = "\n".join(_result_texts(result)).strip()
        call = calls.get(str(result.get("tool_use_id")), {})
        tool_input = call.get("input") if isinstance(call.get("input"), dict) else {}
        found = DENIAL_RE.match(text)
        if found:
            name = str(call.get("name") or found.group("tool"))
            refused.append(Refusal(name, dict(tool_input or {}), (found.group("reason") or "")))
        elif text.startswith(CLI_REFUSAL):
            refused.append(Refusal(str(call.get("name") or "tool"), dict(tool_input or {})))
    return refused


def _attempt(refusal: Refusal) -> str:
    """What the refused call would have done: "write `notes.md`", "run `ls`"."""
    verbs = {"Write": "write", "Edit": "edit", "NotebookEdit": "edit", "Read": "read"}
    path = refusal.input.get("file_path") or refusal.input.get("notebook_path")
    if refusal.tool in verbs and isinstance(path, str) and path:
        return f"{verbs[refusal.tool]} `{Path(path).name}`"
    command = refusal.input.get("command")
    if refusal.tool == "Bash" and isinstance(command, str) and command:
        short = command if len(command) <= 60 else command[:57] + "..."
        return f"run `{short}`"
    return f"use {refusal.tool}"


def refusal_text(refusals: Sequence[Refusal]) -> str:
    """The scripted reply after refused calls: what could not be done, and that the
    call was refused (with the reason given), never a claim that it was done."""
    first = refusals[0]
    why = f"the {first.tool} was refused" if first.reason else f"you refused the {first.tool}"
    if first.reason:
        why += f" ({first.reason.rstrip('.')})"
    more = f" ({len(refusals) - 1} more call(s) refused too)" if len(refusals) > 1 else ""
    return (
        f"I could not {_attempt(first)}: {why}{more}. I stopped there. "
        "(Scripted reply: the scripted model noticed the refusal.)"
    )


def latest_prompt(messages: Sequence[Mapping[str, Any]]) -> str:
    return conversation_position(messages)[0]


def working_directory(body: Mapping[str, Any]) -> str:
    """The CLI's working directory as it tells the model (for ``{cwd}``); "." if unknown."""
    texts: list[str] = []
    system = body.get("system")
    if isinstance(system, str):
        texts.append(system)
    elif isinstance(system, list):
        texts.extend(str(b.get("text", "")) for b in system if isinstance(b, dict))
    for message in body.get("messages") or []:
        if isinstance(message, dict) and message.get("role") in ("system", "user"):
            texts.extend(str(b.get("text", "")) for b in _content_blocks(message))
    for text in texts:
        found = _CWD_RE.search(text)
        if found:
            return found.group(1)
    return "."


def is_structured_request(body: Mapping[str, Any]) -> bool:
    """A side request that wants JSON matching a schema (e.g. the session title)."""
    output_config = body.get("output_config")
    if not isinstance(output_config, dict):
        return False
    fmt = output_config.get("format")
    return isinstance(fmt, dict) and isinstance(fmt.get("schema"), dict) and not body.get("tools")


def offered_tools(body: Mapping[str, Any]) -> set[str]:
    return {
        str(t["name"])
        for t in body.get("tools") or []
        if isinstance(t, dict) and "name" in t and not t.get("defer_loading")
    }


# -- choosing -------------------------------------------------------------------------


def _fill(value: Any, variables: Mapping[str, str]) -> Any:
    # Plain replacement, not str.format: scripted code is full of braces.
    if isinstance(value, str):
        for key, replacement in variables.items():
            value = value.replace("{" + key + "}", replacement)
        return value
    if isinstance(value, list):
        return [_fill(v, variables) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, variables) for k, v in value.items()}
    return value


def _filter_step(
    step: tuple[Block | Fault, ...], tools: set[str]
) -> tuple[Block | Fault, ...] | None:
    """Drop optional tool calls the request does not offer; None if the step loses all
    its tool calls that way (its text went with them)."""
    kept = tuple(
        b for b in step if not (isinstance(b, ToolUseBlock) and b.optional and b.name not in tools)
    )
    had_tools = any(isinstance(b, ToolUseBlock) for b in step)
    if had_tools and not any(isinstance(b, ToolUseBlock) for b in kept):
        return None
    return kept


def _structured_value(schema: Any, prompt: str) -> Any:
    if not isinstance(schema, dict):
        return None
    kind = schema.get("type")
    if "enum" in schema and schema["enum"]:
        return schema["enum"][0]
    if kind == "object":
        props = schema.get("properties") or {}
        required = schema.get("required") or list(props)
        return {k: _structured_value(props.get(k, {}), prompt) for k in required}
    if kind == "array":
        return []
    if kind in ("integer", "number"):
        return 0
    if kind == "boolean":
        return False
    if kind == "string":
        return title_for(prompt)
    return None


def title_for(prompt: str) -> str:
    """A short title from the prompt; the CLI's title request wraps it in <session>."""
    session = _SESSION_RE.search(prompt)
    text = _TAG_RE.sub(" ", session.group(1) if session else prompt)
    words = text.split()[:5]
    return " ".join(words).strip(" .,:;!?").capitalize() or "Scripted session"


def choose_reply(script: Script, body: Mapping[str, Any]) -> Reply:
    """The response to a Messages API request body: which scenario, which step."""
    messages = body.get("messages") or []
    prompt, rounds = conversation_position(messages)
    if is_structured_request(body):
        schema = body["output_config"]["format"]["schema"]
        text = json.dumps(_structured_value(schema, prompt))
        return Reply((TextBlock(text),), kind="structured")
    variables = {"prompt": prompt, "cwd": working_directory(body)}
    variables["result"] = last_tool_result(messages)
    # Before a task exists, {task:N} falls back to N: right for a fresh session.
    task_ids = created_task_ids(messages)
    for n in range(1, 10):
        variables[f"task:{n}"] = task_ids[n - 1] if n <= len(task_ids) else str(n)
    scenario, groups = None, None
    for candidate in script.scenarios:
        groups = candidate.groups(prompt)
        if groups is not None:
            scenario = candidate
            break
    refused = refused_calls(messages)
    if refused:
        # the user said no: the plan ends here, and the reply must not claim it was done
        name = scenario.name if scenario is not None else ""
        return Reply((TextBlock(refusal_text(refused)),), scenario=name, kind="refused")
    if scenario is None:
        return Reply((TextBlock(_fill(FALLBACK_TEXT, variables)),), kind="fallback")
    variables = {**(groups or {}), **variables}
    tools = offered_tools(body)
    steps = [s for s in (_filter_step(step, tools) for step in scenario.steps) if s is not None]
    if rounds >= len(steps):
        final = TextBlock(_fill(scenario.final, variables))
        return Reply((final,), scenario=scenario.name, step=len(steps), kind="final")
    blocks: list[Block] = []
    fault = Fault()
    for item in steps[rounds]:
        if isinstance(item, Fault):
            fault = _merge_faults(fault, item)
        elif isinstance(item, TextBlock):
            blocks.append(TextBlock(_fill(item.text, variables)))
        elif isinstance(item, ThinkingBlock):
            blocks.append(ThinkingBlock(_fill(item.thinking, variables)))
        else:
            blocks.append(ToolUseBlock(item.name, _fill(item.input, variables), item.optional))
    if not blocks:
        blocks.append(TextBlock(_fill(scenario.final, variables)))
    return Reply(tuple(blocks), fault=fault, scenario=scenario.name, step=rounds)


def _merge_faults(a: Fault, b: Fault) -> Fault:
    return Fault(
        status=b.status if b.status is not None else a.status,
        broken_after=b.broken_after if b.broken_after is not None else a.broken_after,
        delay=b.delay or a.delay,
        times=b.times if b.times is not None else a.times,
        message=b.message or a.message,
    )
