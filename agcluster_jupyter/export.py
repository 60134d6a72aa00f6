"""A conversation out of its event log: raw JSONL or readable Markdown."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from .events import Event

__all__ = ["EXPORT_FORMATS", "to_jsonl", "to_markdown"]

EXPORT_FORMATS = ("jsonl", "md")


def to_jsonl(events: Iterable[Event]) -> str:
    return "".join(json.dumps(e.model_dump(mode="json"), ensure_ascii=False) + "\n" for e in events)


def _fence(text: str, lang: str = "") -> str:
    fence = "```"
    while fence in text:
        fence += "`"
    return f"{fence}{lang}\n{text.rstrip()}\n{fence}"


def _summary(tool: str, data: dict[str, Any]) -> str:
    if tool == "Bash" and "command" in data:
        return _fence(str(data["command"]), "bash")
    return _fence(json.dumps(data, indent=2, ensure_ascii=False), "json")


def to_markdown(events: Iterable[Event], title: str) -> str:
    out = [f"# {title}", ""]
    for e in events:
        if e.type == "message":
            who = {"user": "User", "assistant": "Assistant"}.get(e.role, e.role.title())
            nested = " (sub-agent)" if e.parent_tool_use_id else ""
            out += [f"**{who}{nested}:**", "", e.text, ""]
        elif e.type == "thinking":
            out += ["<details><summary>Thinking</summary>", "", e.text, "", "</details>", ""]
        elif e.type == "tool_use":
            out += [f"**Tool `{e.name}`**", "", _summary(e.name, e.input), ""]
        elif e.type == "tool_result":
            label = "Error" if e.is_error else "Output"
            out += [
                f"<details><summary>{label}</summary>",
                "",
                _fence(e.output),
                "",
                "</details>",
                "",
            ]
        elif e.type == "todo_update":
            marks = {"completed": "x", "in_progress": "~", "pending": " "}
            out += ["**Tasks**", ""]
            out += [f"- [{marks[t.status]}] {t.content}" for t in e.todos]
            out += [""]
        elif e.type == "result":
            cost = f"${e.cost_usd:.4f}" if e.cost_usd is not None else "n/a"
            out += [f"_Turn finished in {e.duration_ms / 1000:.1f} s, cost {cost}._", ""]
        elif e.type == "error":
            out += [f"> **Error ({e.code}):** {e.message}", ""]
    return "\n".join(out).rstrip() + "\n"
