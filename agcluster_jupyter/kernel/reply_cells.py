"""``%%agent --cells``: the agent's reply as notebook cells below the ``%%agent`` cell.

:func:`reply_cells` splits the reply's Markdown: each fenced code block becomes a code
cell, the text between them a Markdown cell (pure).  The kernel cannot insert cells
itself, so it displays them as :data:`CELLS_MIME`; the JupyterLab extension renders that
output by inserting the cells below the cell it belongs to, once (each inserted cell
carries ``metadata.agcluster.from`` = the bundle's ``key``, so a re-render or a reopened
notebook does not insert them again).  Lab renders the type only for outputs of the
user's own run (it is not a "safe" type): a notebook from elsewhere inserts nothing.
Without the extension the output reads as plain text.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["CELLS_MIME", "cells_bundle", "reply_cells"]

CELLS_MIME = "application/vnd.agcluster.cells+json"
#: a fenced block: ``` or ~~~, an optional info string, up to the same fence
_FENCE = re.compile(
    r"^(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*)\n(?P<code>.*?)^(?P=fence)[ \t]*$", re.M | re.S
)


def reply_cells(text: str) -> list[dict[str, str]]:
    """``[{cell_type, source}]`` of a Markdown reply, in order; blank parts dropped."""
    cells: list[dict[str, str]] = []

    def markdown(part: str) -> None:
        part = part.strip("\n").rstrip()
        if part.strip():
            cells.append({"cell_type": "markdown", "source": part})

    at = 0
    for block in _FENCE.finditer(text):
        markdown(text[at : block.start()])
        code = block.group("code").rstrip("\n")
        language = block.group("info").strip().split(" ")[0].lower()
        if language and language not in ("python", "py", "python3", "ipython", "ipython3"):
            # a shell or SQL block stays runnable where IPython has a cell magic for it
            magic = {"bash": "%%bash", "sh": "%%sh", "shell": "%%bash", "html": "%%html"}.get(
                language
            )
            code = f"{magic}\n{code}" if magic else code
        if code.strip():
            cells.append({"cell_type": "code", "source": code})
        at = block.end()
    markdown(text[at:])
    return cells


def cells_bundle(key: str, cells: list[dict[str, str]]) -> dict[str, Any]:
    """The display data of ``--cells``: the cells for the extension, a text for others."""
    count = len(cells)
    return {
        CELLS_MIME: {"key": key, "cells": cells},
        "text/plain": f"{count} cell{'s' if count != 1 else ''} from the agent's reply "
        "(inserted below by the agcluster JupyterLab extension)",
    }
