"""What changed between two snapshots, in the shape of the REST API (DESIGN.md).

Text files get a unified diff (``difflib``), capped at :data:`DIFF_MAX_CHARS`; files that
are big, not UTF-8 or hold a NUL byte are binary: sizes and blob ids only, never read as
text.  Notebooks get cell-level changes computed by nbdime (a cell added, removed or
modified, with its source diff), so a re-run cell reads as "outputs changed", not as a
page of JSON.  Symlinks are compared by their target.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Literal

from .store import Entry, SnapshotStore

__all__ = [
    "DIFF_MAX_CHARS",
    "TEXT_MAX_BYTES",
    "Change",
    "changes",
    "file_diff",
    "summarize",
]

#: a text diff longer than this is cut (``truncated: true``)
DIFF_MAX_CHARS = 64 * 1024
#: files bigger than this are never diffed as text
TEXT_MAX_BYTES = 1024 * 1024
#: cells listed per notebook diff
MAX_CELLS = 200

Status = Literal["added", "modified", "deleted"]

_EMPTY_NOTEBOOK = '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'


@dataclass(frozen=True)
class Change:
    path: str
    status: Status
    before: Entry | None
    after: Entry | None


def changes(before: dict[str, Entry], after: dict[str, Entry]) -> list[Change]:
    """Every path whose entry differs, in path order."""
    out: list[Change] = []
    for path in sorted(before.keys() | after.keys()):
        old, new = before.get(path), after.get(path)
        if old == new:
            continue
        if old is None:
            out.append(Change(path, "added", None, new))
        elif new is None:
            out.append(Change(path, "deleted", old, None))
        else:
            out.append(Change(path, "modified", old, new))
    return out


def _text(store: SnapshotStore, entry: Entry | None) -> str | None:
    """The entry as text, or None when it is binary (or too big to diff)."""
    if entry is None:
        return ""
    if entry.size > TEXT_MAX_BYTES:
        return None
    data = store.read(entry)
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _line_counts(old: str, new: str) -> tuple[int, int]:
    added = removed = 0
    for line in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0):
        if line.startswith("+") and not line.startswith("+++"):
            added += 1
        elif line.startswith("-") and not line.startswith("---"):
            removed += 1
    return added, removed


def summarize(store: SnapshotStore, found: list[Change]) -> dict[str, int]:
    """The ``checkpoint`` event's figures: files and lines added, modified, removed."""
    counts = {"added": 0, "modified": 0, "deleted": 0}
    lines_added = lines_removed = 0
    for change in found:
        counts[change.status] += 1
        old, new = _text(store, change.before), _text(store, change.after)
        if old is not None and new is not None:
            plus, minus = _line_counts(old, new)
            lines_added += plus
            lines_removed += minus
    return {
        "files_changed": len(found),
        **counts,
        "lines_added": lines_added,
        "lines_removed": lines_removed,
    }


def file_diff(
    store: SnapshotStore, change: Change, after_store: SnapshotStore | None = None
) -> dict[str, Any]:
    """One file's entry of a diff: status, sizes, and its text diff or cell changes.
    ``after_store``: where the after side lives when it is another session's store."""
    old, new = change.before, change.after
    item: dict[str, Any] = {
        "path": change.path,
        "status": change.status,
        "size_before": old.size if old else None,
        "size_after": new.size if new else None,
        "sha_before": old.sha.decode() if old else None,
        "sha_after": new.sha.decode() if new else None,
        "link": bool((old and old.is_link) or (new and new.is_link)),
    }
    old_text, new_text = _text(store, old), _text(after_store or store, new)
    if old_text is None or new_text is None:
        item["binary"] = True
        return item
    item["binary"] = False
    if change.path.endswith(".ipynb"):
        cells = _notebook_cells(old_text, new_text)
        if cells is not None:
            item["cells"] = cells
            return item
    lines = difflib.unified_diff(
        old_text.splitlines(keepends=True),
        new_text.splitlines(keepends=True),
        fromfile=f"a/{change.path}" if old else "/dev/null",
        tofile=f"b/{change.path}" if new else "/dev/null",
    )
    text = "".join(line if line.endswith("\n") else line + "\n" for line in lines)
    item["truncated"] = len(text) > DIFF_MAX_CHARS
    item["diff"] = text[:DIFF_MAX_CHARS]
    return item


def _source(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def _notebook_cells(old_text: str, new_text: str) -> list[dict[str, Any]] | None:
    """Cell-level changes by nbdime; None when either side is not a notebook."""
    import nbformat
    from nbdime import diff_notebooks  # type: ignore[import-untyped]

    try:
        old_nb = nbformat.reads(old_text or _EMPTY_NOTEBOOK, as_version=4)  # type: ignore[no-untyped-call]
        new_nb = nbformat.reads(new_text or _EMPTY_NOTEBOOK, as_version=4)  # type: ignore[no-untyped-call]
    except Exception:  # noqa: BLE001 - nbformat raises many kinds for a broken file
        return None
    old_cells, new_cells = list(old_nb.cells), list(new_nb.cells)
    out: list[dict[str, Any]] = []
    offset = 0
    for op in next((d["diff"] for d in diff_notebooks(old_nb, new_nb) if d["key"] == "cells"), []):
        key = int(op["key"])
        if op["op"] == "addrange":
            for n, cell in enumerate(op["valuelist"]):
                out.append(
                    {
                        "status": "added",
                        "index": key + offset + n,
                        "cell_type": cell.get("cell_type"),
                        "source": _source(cell)[:DIFF_MAX_CHARS],
                    }
                )
            offset += len(op["valuelist"])
        elif op["op"] == "removerange":
            for n in range(int(op["length"])):
                cell = old_cells[key + n]
                out.append(
                    {
                        "status": "deleted",
                        "index_before": key + n,
                        "cell_type": cell.get("cell_type"),
                        "source": _source(cell)[:DIFF_MAX_CHARS],
                    }
                )
            offset -= int(op["length"])
        elif op["op"] == "patch":
            old_cell, new_cell = old_cells[key], new_cells[key + offset]
            changed = sorted({str(d["key"]) for d in op["diff"]} - {"id"})
            if not changed:
                continue
            entry: dict[str, Any] = {
                "status": "modified",
                "index_before": key,
                "index": key + offset,
                "cell_type": new_cell.get("cell_type"),
                "changed": changed,
            }
            if "source" in changed:
                entry["diff"] = "".join(
                    difflib.unified_diff(
                        _source(old_cell).splitlines(keepends=True),
                        _source(new_cell).splitlines(keepends=True),
                        lineterm="\n",
                    )
                )[:DIFF_MAX_CHARS]
            out.append(entry)
        if len(out) >= MAX_CELLS:
            break
    return out
