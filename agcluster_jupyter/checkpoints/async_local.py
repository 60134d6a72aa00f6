"""A :class:`~.history.CheckpointHistory` on the server's host (docker, local), behind the
async :class:`~.protocol.Checkpoints` contract: each call runs in a worker thread, so a
walk of a big workspace never holds the event loop."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import IO, Any

from .history import CheckpointHistory
from .restore import apply_files
from .store import SnapshotStore
from .transfer import read_objects, write_objects

__all__ = ["AsyncLocalCheckpoints"]


class AsyncLocalCheckpoints:
    def __init__(self, history: CheckpointHistory) -> None:
        self.history = history
        self.known_count = history.count()

    async def begin_turn(self, turn: int, prompt: str) -> None:
        await asyncio.to_thread(self.history.begin_turn, turn, prompt)
        self.known_count = self.history.count()

    async def end_turn(self, turn: int, anchor: dict[str, str] | None) -> dict[str, int] | None:
        summary = await asyncio.to_thread(self.history.end_turn, turn, anchor)
        self.known_count = self.history.count()
        return summary

    async def listing(self) -> dict[str, Any]:
        return await asyncio.to_thread(self.history.listing)

    async def diff(self, turn: int, path: str | None) -> dict[str, Any]:
        return await asyncio.to_thread(self.history.diff, turn, path)

    async def restore(self, turn: int, paths: list[str] | None) -> list[str]:
        return await asyncio.to_thread(self.history.restore, turn, paths)

    async def peek_undo(self) -> dict[str, Any]:
        return await asyncio.to_thread(self.history.peek_undo)

    async def undo(self) -> list[str]:
        return await asyncio.to_thread(self.history.undo)

    async def rewind_point(self, turn: int) -> dict[str, str] | None:
        return await asyncio.to_thread(self.history.rewind_point, turn)

    async def rewind_files(self, turn: int, conversation: str | None) -> list[str]:
        return await asyncio.to_thread(self.history.rewind_files, turn, conversation)

    async def export(self, turn: int | None, out: IO[bytes]) -> None:
        def run() -> None:
            tree, _ = self.history.fork_point(turn, None)
            write_objects(self.history.store, tree, out)

        await asyncio.to_thread(run)

    async def seed(self, stream: IO[bytes]) -> int:
        return await asyncio.to_thread(seed_workspace, self.history, stream)

    async def materialize(self, scratch: Path) -> tuple[SnapshotStore, bytes]:
        tree = await asyncio.to_thread(self.history.snapshot_now)
        return self.history.store, tree


def seed_workspace(history: CheckpointHistory, stream: IO[bytes]) -> int:
    """A snapshot stream into ``history``'s store, then its files into the workspace."""
    with history.locked():
        tree = read_objects(history.store, stream)
        files = history.store.files(tree)
        return len(apply_files(history.store, history.workspace, files, {}, files))
