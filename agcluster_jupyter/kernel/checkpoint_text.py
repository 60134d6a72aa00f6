"""Checkpoints and diffs as plain text, for ``%agent checkpoints`` and ``%agent diff``.

Plain text only (printed, never rendered as HTML): file names and diffs are the agent's.
"""

from __future__ import annotations

from typing import Any

__all__ = ["format_checkpoints", "format_diff"]


def format_checkpoints(listing: dict[str, Any]) -> str:
    items = listing.get("checkpoints") or []
    if not items:
        return "(no checkpoints yet: each turn records one before it starts)"
    lines = []
    if listing.get("pruned_before"):
        lines.append(f"(turns before {listing['pruned_before']} were pruned)")
    for c in items:
        running = "" if c.get("finished", True) else "  (running)"
        lines.append(
            f"turn {c['turn']:>3}  {c['files_changed']} file(s): +{c['added']} "
            f"~{c['modified']} -{c['deleted']}, lines +{c['lines_added']} "
            f"-{c['lines_removed']}  {c.get('prompt', '')[:60]!r}{running}"
        )
    return "\n".join(lines)


def format_diff(diff: dict[str, Any]) -> str:
    files = diff.get("files") or []
    if not files:
        return f"turn {diff.get('turn')} changed no files"
    out: list[str] = []
    for f in files:
        out.append(f"{f['status']:<8} {f['path']}")
        if f.get("binary"):
            out.append(f"         binary: {f.get('size_before')} -> {f.get('size_after')} bytes")
        elif "cells" in f:
            for cell in f["cells"]:
                where = cell.get("index", cell.get("index_before"))
                what = ", ".join(cell.get("changed", [])) or cell.get("cell_type", "")
                out.append(f"         cell {where}: {cell['status']} ({what})")
                if cell.get("diff"):
                    out.append(cell["diff"].rstrip("\n"))
        elif f.get("diff"):
            out.append(f["diff"].rstrip("\n"))
            if f.get("truncated"):
                out.append("         (diff cut; ask for this path alone, or open it in the panel)")
    return "\n".join(out)
