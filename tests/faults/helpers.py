"""Helpers of the fault tests (the index of faults is in conftest.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..support import assert_gapless, event_log, wait_until

__all__ = [
    "LEAN_SERVER",
    "assert_gapless",
    "conversation",
    "event_log",
    "slow_reply",
    "wait_until",
    "workspace_of",
]

#: `jupyter server` arguments that load agcluster alone (JupyterLab and the other
#: installed extensions add seconds to every start and play no part in these faults)
LEAN_SERVER = (
    "--ServerApp.jpserver_extensions=agcluster_jupyter=True",
    *(
        f"--ServerApp.jpserver_extensions={name}=False"
        for name in ("jupyterlab", "jupyter_lsp", "jupyter_server_terminals", "notebook_shim")
    ),
)


def slow_reply(match: str, deltas: int, delay: float) -> dict[str, Any]:
    """A scenario whose reply streams ``deltas`` text deltas (``d001 x y``, three words
    each), ``delay`` seconds apart: a turn long enough to break in the middle of."""
    text = " ".join(f"d{i:03d} x y" for i in range(deltas))
    return {"match": match, "steps": [[{"text": text}, {"delay": delay}]]}


def conversation(request: Any) -> str:
    """The messages a model request carried, as one string to search."""
    return json.dumps(request.body.get("messages"))


def workspace_of(session: dict[str, Any]) -> Path:
    return Path(session["workspace"])
