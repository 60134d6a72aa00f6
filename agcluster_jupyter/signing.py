"""A notebook signature never covers agent output.

Jupyter signs a notebook when it saves one whose outputs all came from this session's
kernels, and a signed notebook opens *trusted*: its HTML outputs and Markdown render
unsanitized and its JavaScript runs.  Agent output is rendered safe where it is made
(:mod:`agcluster_jupyter.untrusted`), but a signature over it would vouch for bytes that
anyone who edits the file later could swap.  So the server extension wraps its contents
manager's ``check_and_sign``: a notebook that holds agent content (an output or a cell marked with
:data:`~agcluster_jupyter.untrusted.MARKER_KEY`, a ``%%agent`` cell with outputs, or an
exported conversation) is saved unsigned and reopens untrusted.  The user's other outputs
in that notebook then need a re-run to be trusted again, which is the point.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from typing import Any

from .untrusted import MARKER_KEY

__all__ = ["holds_agent_output", "never_sign_agent_output"]

_log = logging.getLogger(__name__)
_WRAPPED = "_agcluster_unsigned"


def _source(cell: Mapping[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def holds_agent_output(nb: Mapping[str, Any]) -> bool:
    """True if the notebook (nbformat v4 as a mapping) carries anything an agent made."""
    if MARKER_KEY in (nb.get("metadata") or {}):
        return True  # an exported conversation
    for cell in nb.get("cells") or []:
        if MARKER_KEY in (cell.get("metadata") or {}):
            return True  # a cell the agent wrote or rewrote (the jupyter tools)
        if cell.get("cell_type") != "code":
            continue
        outputs = cell.get("outputs") or []
        if not outputs:
            continue
        if _source(cell).lstrip().startswith(("%%agent", "%agent")):
            return True
        for output in outputs:
            if MARKER_KEY in (output.get("metadata") or {}):
                return True
    return False


def never_sign_agent_output(contents_manager: Any) -> bool:
    """Wrap ``contents_manager.check_and_sign`` (once) so it leaves notebooks holding agent
    output unsigned; False if the manager has no such method (nothing to wrap)."""
    original: Callable[..., Any] | None = getattr(contents_manager, "check_and_sign", None)
    if original is None:
        return False
    if getattr(original, _WRAPPED, False):
        return True

    @functools.wraps(original)
    def check_and_sign(nb: Any, path: str = "") -> Any:
        if holds_agent_output(nb):
            _log.info("agcluster: %s holds agent output; saved unsigned (untrusted)", path)
            return None
        return original(nb, path)

    setattr(check_and_sign, _WRAPPED, True)
    contents_manager.check_and_sign = check_and_sign
    return True
