"""Two sessions' workspaces side by side (``GET agents/{id}/compare/{other_id}``), wherever
their checkpoints are kept: each side gives a store holding its workspace now
(``Checkpoints.materialize``; a remote one is copied into a scratch store first) and the
diff is the one a turn's diff uses."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from .async_local import AsyncLocalCheckpoints
from .diff import changes, file_diff
from .protocol import Checkpoints

__all__ = ["compare"]


async def compare(mine: Checkpoints, theirs: Checkpoints) -> dict[str, Any]:
    """``mine`` now against ``theirs`` now (``added``: only in theirs)."""
    if isinstance(mine, AsyncLocalCheckpoints) and isinstance(theirs, AsyncLocalCheckpoints):
        return await asyncio.to_thread(mine.history.compare, theirs.history)
    with tempfile.TemporaryDirectory(prefix="agcluster-compare-") as scratch:
        mine_store, mine_tree = await mine.materialize(Path(scratch) / "a")
        their_store, their_tree = await theirs.materialize(Path(scratch) / "b")

        def run() -> dict[str, Any]:
            found = changes(mine_store.files(mine_tree), their_store.files(their_tree))
            return {"files": [file_diff(mine_store, c, their_store) for c in found]}

        return await asyncio.to_thread(run)
