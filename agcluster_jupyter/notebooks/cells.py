"""A notebook as the agent reads it, and its edits applied: pure functions on nbformat v4
dicts, tested as data.

:func:`notebook_view` is what ``read_notebook`` returns: every cell with its id, type,
source, text outputs (capped) and execution count, plus a ``version`` (:func:`version_of`,
a hash of the notebook's content) that ``edit_notebook`` must quote back.
:func:`apply_edits` applies an edit list to a copy, all or nothing: any bad edit (an
unknown cell id, a missing field, an unknown op) raises :class:`EditError` naming the
edit, and the notebook is left as it was.

Cells the agent inserts or rewrites carry ``metadata.agcluster`` (``session``, ``turn``):
the user can tell them apart, and the signer (``signing.py``) never vouches for a notebook
holding them.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..untrusted import MARKER_KEY

__all__ = [
    "CELL_TYPES",
    "MAX_EDITS",
    "MAX_SOURCE_CHARS",
    "EditError",
    "EditResult",
    "apply_edits",
    "cell_ids",
    "new_notebook",
    "notebook_view",
    "version_of",
]

CELL_TYPES = ("code", "markdown", "raw")
#: edits in one ``edit_notebook`` call
MAX_EDITS = 200
#: one cell's source as the agent may write it
MAX_SOURCE_CHARS = 200_000
#: one output's text as the agent reads it, and a cell's outputs together
OUTPUT_CHARS = 2_000
CELL_OUTPUT_CHARS = 8_000
#: one cell's source as the agent reads it (longer ones say so)
READ_SOURCE_CHARS = 50_000
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_EDIT_KEYS = {"op", "cell_id", "after_cell_id", "cell_type", "source"}


class EditError(ValueError):
    """An edit list that cannot be applied; the message says which edit and why."""


def _text(value: Any) -> str:
    if isinstance(value, list):
        return "".join(str(v) for v in value)
    return value if isinstance(value, str) else ""


def plain(content: Any) -> dict[str, Any]:
    """A notebook (a NotebookNode, a shared document's dict) as plain JSON data: what the
    version hash and the edits work on."""
    data: dict[str, Any] = json.loads(json.dumps(content))
    return data


def version_of(nb: Mapping[str, Any]) -> str:
    """A short hash of the notebook's content: changes whenever anything in it does."""
    canonical = json.dumps(nb, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def cell_ids(nb: Mapping[str, Any]) -> list[str]:
    """Each cell's id; a notebook older than nbformat 4.5 has none, so its cells are
    called ``cell-<index>`` (stable while the notebook is unchanged, which the version
    check guarantees between a read and an edit; an edit then saves real ids)."""
    ids = []
    for index, cell in enumerate(nb.get("cells") or []):
        given = cell.get("id")
        ids.append(given if isinstance(given, str) and given else f"cell-{index}")
    return ids


def _cap(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n… [{len(text) - limit} more characters not shown]"


def _output_text(output: Mapping[str, Any]) -> dict[str, Any]:
    kind = output.get("output_type", "")
    if kind == "stream":
        text = _text(output.get("text"))
        return {"output_type": kind, "name": output.get("name", ""), "text": text}
    if kind == "error":
        trace = "\n".join(_ANSI.sub("", _text(line)) for line in output.get("traceback") or [])
        head = f"{output.get('ename', '')}: {output.get('evalue', '')}"
        return {"output_type": kind, "text": f"{head}\n{trace}".strip()}
    data = output.get("data") or {}
    shown: dict[str, Any] = {"output_type": kind}
    if "text/plain" in data:
        shown["text"] = _text(data["text/plain"])
    others = sorted(k for k in data if k != "text/plain")
    if others:
        # images and rich outputs: what they are and how big, not their bytes
        shown["data"] = {k: f"<{k}, {len(_text(data[k]))} characters>" for k in others}
    return shown


def _outputs(cell: Mapping[str, Any]) -> list[dict[str, Any]]:
    return outputs_view(cell.get("outputs") or [])


def outputs_view(outputs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Outputs as the agent reads them: text capped (each, and together, saying so),
    ANSI colours stripped, images and rich data as their type and size."""
    shown = []
    budget = CELL_OUTPUT_CHARS
    for output in outputs:
        item = _output_text(output)
        text = item.get("text")
        if isinstance(text, str):
            text = _ANSI.sub("", text)
            item["text"] = _cap(text, min(OUTPUT_CHARS, max(budget, 0)))
            budget -= len(item["text"])
        shown.append(item)
        if budget <= 0:
            shown.append({"output_type": "note", "text": "[further outputs not shown]"})
            break
    return shown


def notebook_view(path: str, nb: Mapping[str, Any]) -> dict[str, Any]:
    """What ``read_notebook`` returns for the notebook ``nb`` at ``path``."""
    cells = []
    for cell_id, cell in zip(cell_ids(nb), nb.get("cells") or [], strict=True):
        source = _text(cell.get("source"))
        item: dict[str, Any] = {
            "id": cell_id,
            "cell_type": cell.get("cell_type", ""),
            "source": _cap(source, READ_SOURCE_CHARS),
        }
        if len(source) > READ_SOURCE_CHARS:
            item["source_truncated"] = True
        if cell.get("cell_type") == "code":
            item["outputs"] = _outputs(cell)
            item["execution_count"] = cell.get("execution_count")
        cells.append(item)
    language = ((nb.get("metadata") or {}).get("language_info") or {}).get("name")
    return {"path": path, "version": version_of(nb), "language": language, "cells": cells}


def new_notebook() -> dict[str, Any]:
    """An empty nbformat 4.5 notebook (a Python 3 kernel, as JupyterLab's New does)."""
    return {
        "cells": [],
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


@dataclass
class EditResult:
    notebook: dict[str, Any]
    inserted: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)


def _new_cell(cell_type: str, source: str, cell_id: str, marker: dict[str, Any]) -> dict[str, Any]:
    cell: dict[str, Any] = {
        "id": cell_id,
        "cell_type": cell_type,
        "metadata": {MARKER_KEY: dict(marker)},
        "source": source,
    }
    if cell_type == "code":
        cell["outputs"] = []
        cell["execution_count"] = None
    return cell


def _field(edit: Mapping[str, Any], name: str, where: str, *, required: bool) -> str | None:
    value = edit.get(name)
    if value is None:
        if required:
            raise EditError(f"{where}: {name} is required")
        return None
    if not isinstance(value, str):
        raise EditError(f"{where}: {name} must be a string")
    return value


def apply_edits(
    nb: Mapping[str, Any], edits: Any, *, marker: dict[str, Any] | None = None
) -> EditResult:
    """``edits`` applied in order to a copy of ``nb`` (nothing changes unless all apply).

    ``insert {source, cell_type?='code', after_cell_id?}``: after that cell; ``""`` puts
    it at the top, none at the end.  ``replace {cell_id, source, cell_type?}``: the cell
    keeps its id; a code cell's outputs go (they were of the old source).
    ``delete {cell_id}``.
    """
    if not isinstance(edits, list) or not edits:
        raise EditError("edits must be a non-empty list of {op, ...} objects")
    if len(edits) > MAX_EDITS:
        raise EditError(f"at most {MAX_EDITS} edits per call; split the change")
    marker = marker or {}
    out = copy.deepcopy(dict(nb))
    cells: list[dict[str, Any]] = list(out.get("cells") or [])
    for cell, cell_id in zip(cells, cell_ids(out), strict=True):
        cell["id"] = cell_id  # an old notebook gets the ids its reader was shown
    result = EditResult(notebook=out)

    def index_of(cell_id: str, where: str) -> int:
        for i, cell in enumerate(cells):
            if cell["id"] == cell_id:
                return i
        raise EditError(f"{where}: no cell has id {cell_id!r}; read the notebook again")

    for n, edit in enumerate(edits):
        where = f"edit {n}"
        if not isinstance(edit, Mapping):
            raise EditError(f"{where}: must be an object with an op")
        unknown = sorted(set(edit) - _EDIT_KEYS)
        if unknown:
            raise EditError(f"{where}: unknown field {unknown[0]!r}")
        op = edit.get("op")
        where = f"edit {n} ({op})"
        cell_type = _field(edit, "cell_type", where, required=False)
        if cell_type is not None and cell_type not in CELL_TYPES:
            raise EditError(f"{where}: cell_type must be one of {', '.join(CELL_TYPES)}")
        if op == "insert":
            source = _field(edit, "source", where, required=True) or ""
            _check_source(source, where)
            after = _field(edit, "after_cell_id", where, required=False)
            at = len(cells) if after is None else 0 if after == "" else index_of(after, where) + 1
            new_id = _fresh_id(cells)
            cells.insert(at, _new_cell(cell_type or "code", source, new_id, marker))
            result.inserted.append(new_id)
        elif op == "replace":
            cell_id = _field(edit, "cell_id", where, required=True) or ""
            source = _field(edit, "source", where, required=True) or ""
            _check_source(source, where)
            i = index_of(cell_id, where)
            old = cells[i]
            kind = cell_type or old.get("cell_type", "code")
            cell = _new_cell(kind, source, cell_id, marker)
            # the user's own cell metadata (tags, collapsed, ...) stays
            metadata = dict(old.get("metadata") or {})
            metadata[MARKER_KEY] = dict(marker)
            cell["metadata"] = metadata
            if kind == old.get("cell_type") == "markdown" and old.get("attachments"):
                cell["attachments"] = old["attachments"]
            cells[i] = cell
            result.replaced.append(cell_id)
        elif op == "delete":
            cell_id = _field(edit, "cell_id", where, required=True) or ""
            del cells[index_of(cell_id, where)]
            result.deleted.append(cell_id)
        else:
            raise EditError(f"{where}: op must be insert, replace or delete")
    out["cells"] = cells
    # cell ids need nbformat 4.5
    if out.get("nbformat") == 4 and int(out.get("nbformat_minor") or 0) < 5:
        out["nbformat_minor"] = 5
    return result


def changed_under(edits: Any, then: Mapping[str, Any], now: Mapping[str, Any]) -> str | None:
    """Which cell that ``edits`` names (to replace, delete, or insert after) changed
    between the notebook read (``then``) and ``now``: its id, or None when none did and
    the edits may apply to ``now`` (a collaborator typed elsewhere); ``"order"`` when the
    edits cannot be read (refused later with their own message)."""

    def cells_of(nb: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
        return {
            cell_id: (cell.get("cell_type"), cell.get("source"))
            for cell, cell_id in zip(nb.get("cells") or [], cell_ids(nb), strict=True)
        }

    before, after = cells_of(then), cells_of(now)
    if not isinstance(edits, list):
        return "order"
    for edit in edits:
        if not isinstance(edit, Mapping):
            return "order"
        for key in ("cell_id", "after_cell_id"):
            cell_id = edit.get(key)
            if isinstance(cell_id, str) and cell_id and before.get(cell_id) != after.get(cell_id):
                return cell_id
    return None


def _check_source(source: str, where: str) -> None:
    if len(source) > MAX_SOURCE_CHARS:
        raise EditError(
            f"{where}: source is {len(source)} characters; a cell takes at most "
            f"{MAX_SOURCE_CHARS} (put large data in a file)"
        )
    if "\x00" in source:
        raise EditError(f"{where}: source must not contain NUL characters")


def _fresh_id(cells: list[dict[str, Any]]) -> str:
    taken = {c.get("id") for c in cells}
    while True:
        candidate = secrets.token_hex(4)
        if candidate not in taken:
            return candidate
