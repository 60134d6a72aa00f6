"""A conversation out of its event log: raw JSONL, readable Markdown or a notebook."""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping
from typing import Any

from .events import CheckpointEvent, Event, KernelCallEvent
from .untrusted import MARKER_KEY, details_html, markdown_cell_source, text_html

__all__ = ["EXPORT_FORMATS", "TurnDiffs", "to_jsonl", "to_markdown", "to_notebook"]

EXPORT_FORMATS = ("jsonl", "md", "ipynb")


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


#: a turn's file diffs, by turn number (``CheckpointHistory.diff``'s ``files``)
TurnDiffs = Mapping[int, list[dict[str, Any]]]
#: characters of one file's diff an export carries
_EXPORT_DIFF_CHARS = 20_000


def _changes_summary(e: CheckpointEvent) -> str:
    return (
        f"{e.files_changed} file{'s' if e.files_changed != 1 else ''} changed "
        f"(+{e.added} ~{e.modified} -{e.deleted}; lines +{e.lines_added} -{e.lines_removed})"
    )


def _file_text(f: dict[str, Any]) -> str:
    """One file's change as text: its diff, its cells, or its sizes."""
    if f.get("binary"):
        return f"binary: {f.get('size_before')} -> {f.get('size_after')} bytes"
    if "cells" in f:
        parts = []
        for cell in f["cells"]:
            where = cell.get("index", cell.get("index_before"))
            parts.append(f"cell {where}: {cell['status']} {', '.join(cell.get('changed', []))}")
            parts.append(cell.get("diff") or cell.get("source") or "")
        return "\n".join(parts)
    return str(f.get("diff") or "")[:_EXPORT_DIFF_CHARS]


def _kernel_call(e: KernelCallEvent) -> str:
    """What an agent did in the user's kernel, as Markdown: where, what, who allowed it,
    how it ended; the code itself fenced (never as a runnable cell)."""
    who = f", approved by {e.approved_by}" if e.approved_by else ""
    head = (
        f"**In the kernel of `{e.notebook}`** (kernel `{e.kernel_id}`): `{e.tool}`{who}, "
        f"{e.outcome} in {e.duration_ms / 1000:.1f} s"
    )
    return f"{head}\n\n{_fence(e.code, 'python')}" if e.code else head


def to_markdown(events: Iterable[Event], title: str, diffs: TurnDiffs | None = None) -> str:
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
        elif e.type == "checkpoint" and e.files_changed:
            out += [f"<details><summary>{_changes_summary(e)}</summary>", ""]
            for f in (diffs or {}).get(e.turn, []):
                out += [f"`{f['path']}` ({f['status']})", "", _fence(_file_text(f), "diff"), ""]
            out += ["</details>", ""]
        elif e.type == "rewind":
            out += [f"_Rewound to before turn {e.turn}: the later turns were undone._", ""]
        elif e.type == "kernel_call":
            out += [_kernel_call(e), ""]
    return "\n".join(out).rstrip() + "\n"


# ---------------------------------------------------------------- notebook (nbformat v4)

#: the input fields that name what a tool call is about, best first
_SUBJECT_KEYS = ("file_path", "path", "notebook_path", "pattern", "url", "query", "subject")
_MAX_SUMMARY = 200


def _compact(tool: str, data: dict[str, Any]) -> str:
    """One Markdown line for a non-Bash tool call: its name and what it acts on."""
    subject = next((str(data[k]) for k in _SUBJECT_KEYS if data.get(k)), None)
    if subject is None:
        subject = json.dumps(data, ensure_ascii=False, separators=(", ", ": "))
    if len(subject) > _MAX_SUMMARY:
        subject = subject[: _MAX_SUMMARY - 1] + "…"
    tick = "``" if "`" in subject else "`"
    pad = " " if subject.startswith("`") or subject.endswith("`") else ""
    return f"- **{tool}** {tick}{pad}{subject}{pad}{tick}"


def _lines(text: str) -> list[str]:
    # nbformat's multiline strings: a list of lines, each keeping its newline
    return text.splitlines(keepends=True)


class _NotebookBuilder:
    def __init__(self) -> None:
        self.cells: list[dict[str, Any]] = []
        self._tools: list[str] = []  # pending compact tool lines, one Markdown cell
        self._bash: dict[str, dict[str, Any]] = {}  # tool_use_id → its code cell

    def _id(self) -> str:
        return f"cell-{len(self.cells) + 1}"

    def markdown(self, text: str) -> None:
        # the agent's Markdown goes in as sanitized HTML: a notebook's Markdown cells render
        # unsanitized once it is trusted, and in nbconvert always
        self.flush_tools()
        source = markdown_cell_source(text)
        self.cells.append(
            {"cell_type": "markdown", "id": self._id(), "metadata": {}, "source": _lines(source)}
        )

    def html(self, source: str) -> None:
        """A Markdown cell of HTML that is sanitized already."""
        self.flush_tools()
        self.cells.append(
            {"cell_type": "markdown", "id": self._id(), "metadata": {}, "source": _lines(source)}
        )

    def flush_tools(self) -> None:
        if self._tools:
            lines, self._tools = self._tools, []
            self.markdown("\n".join(lines))

    def tool(self, line: str) -> None:
        self._tools.append(line)

    def bash(self, tool_use_id: str, command: str) -> None:
        self.flush_tools()
        # %%bash makes the cell mean what it meant to the agent when run in an IPython kernel
        cell: dict[str, Any] = {
            "cell_type": "code",
            "id": self._id(),
            "metadata": {"agcluster": {"tool_use_id": tool_use_id}},
            "execution_count": None,
            "source": _lines(f"%%bash\n{command.rstrip()}"),
            "outputs": [],
        }
        self.cells.append(cell)
        self._bash[tool_use_id] = cell

    def bash_result(self, tool_use_id: str, output: str, is_error: bool) -> bool:
        cell = self._bash.pop(tool_use_id, None)
        if cell is None:
            return False
        if output:
            text = output if output.endswith("\n") else output + "\n"
            name = "stderr" if is_error else "stdout"
            cell["outputs"].append({"output_type": "stream", "name": name, "text": _lines(text)})
        return True


_RERUN_WARNING = (
    "*An agent's conversation, exported. The `%%bash` cells are the commands the agent ran "
    "in its container: running them here runs them on this machine, outside the container. "
    "Read them before you run them.*"
)


def to_notebook(
    events: Iterable[Event], title: str, diffs: TurnDiffs | None = None
) -> dict[str, Any]:
    """The conversation as nbformat v4 JSON: Markdown for text, code cells for Bash, and
    each turn's file changes as a collapsed diff under it."""
    nb = _NotebookBuilder()
    nb.markdown(f"# {title}\n\n{_RERUN_WARNING}")
    for e in events:
        if e.type == "message":
            who = {"user": "User", "assistant": "Assistant"}.get(e.role, e.role.title())
            nested = " (sub-agent)" if e.parent_tool_use_id else ""
            nb.markdown(f"**{who}{nested}:**\n\n{e.text}")
        elif e.type == "tool_use":
            if e.name == "Bash" and isinstance(e.input.get("command"), str):
                nb.bash(e.tool_use_id, e.input["command"])
            else:
                nb.tool(_compact(e.name, e.input))
        elif e.type == "tool_result":
            if not nb.bash_result(e.tool_use_id, e.output, e.is_error) and e.is_error:
                first = e.output.strip().splitlines()[0] if e.output.strip() else "failed"
                nb.tool(f"  - error: {first[:_MAX_SUMMARY]}")
        elif e.type == "error":
            nb.markdown(f"> **Error ({e.code}):** {e.message}")
        elif e.type == "result":
            cost = f"${e.cost_usd:.4f}" if e.cost_usd is not None else "n/a"
            nb.tool(f"\n_Turn finished in {e.duration_ms / 1000:.1f} s, cost {cost}._")
        elif e.type == "checkpoint" and e.files_changed:
            body = "".join(
                f"<p><code>{html.escape(f['path'])}</code> ({html.escape(f['status'])})</p>"
                + text_html(_file_text(f))
                for f in (diffs or {}).get(e.turn, [])
            )
            nb.html(details_html(_changes_summary(e), body))
        elif e.type == "rewind":
            nb.markdown(f"_Rewound to before turn {e.turn}: the later turns were undone._")
        elif e.type == "kernel_call":
            nb.markdown(_kernel_call(e))
    nb.flush_tools()
    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
            # marks agent content: the server never signs (trusts) a notebook holding it
            MARKER_KEY: {"title": title},
        },
        "cells": nb.cells,
    }
