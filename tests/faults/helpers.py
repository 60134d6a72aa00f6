"""Helpers of the fault tests (the index of faults is in conftest.py)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..support import parse_sse

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


async def wait_until(check: Callable[[], Any], timeout: float = 30.0, what: str = "") -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what or check}")


async def event_log(api: Any, session_id: str) -> list[dict[str, Any]]:
    """The session's whole event log, as a late subscriber gets it."""
    return parse_sse(await api(f"agents/{session_id}/events", params={"follow": "false"}))


def assert_gapless(events: list[dict[str, Any]], first: int = 1) -> None:
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(first, first + len(seqs))), f"seq not gapless: {seqs}"


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
