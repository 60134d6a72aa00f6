"""What the server asks of a session's checkpoints, wherever they are kept.

Two implementations, one contract: :class:`~.async_local.AsyncLocalCheckpoints` (docker
and local: the store sits in the session's state on the server's host, the work runs
in a worker thread) and :class:`~.remote.RemoteCheckpoints` (kubernetes and fly: the
store sits on the session's volume and the runner does the work, over the runner
channel).  The handlers and the session manager see only this protocol.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any, Protocol

from .store import SnapshotStore

__all__ = ["Checkpoints"]


class Checkpoints(Protocol):
    #: how many checkpoints there are, as last seen (the session's details: no call)
    known_count: int

    async def begin_turn(self, turn: int, prompt: str) -> None: ...

    async def end_turn(self, turn: int, anchor: dict[str, str] | None) -> dict[str, int] | None: ...

    async def listing(self) -> dict[str, Any]: ...

    async def diff(self, turn: int, path: str | None) -> dict[str, Any]: ...

    async def restore(self, turn: int, paths: list[str] | None) -> list[str]: ...

    async def peek_undo(self) -> dict[str, Any]: ...

    async def undo(self) -> list[str]: ...

    async def rewind_point(self, turn: int) -> dict[str, str] | None: ...

    async def rewind_files(self, turn: int, conversation: str | None) -> list[str]: ...

    async def export(self, turn: int | None, out: IO[bytes]) -> None:
        """The snapshot before ``turn`` (None: the workspace now) as a stream of
        ``transfer.write_objects`` into ``out``."""

    async def seed(self, stream: IO[bytes]) -> int:
        """Write a snapshot stream into the (new, empty) workspace; how many files."""

    async def materialize(self, scratch: Path) -> tuple[SnapshotStore, bytes]:
        """A store holding the workspace as it is now, and that snapshot's tree id (a
        remote one is copied into a store under ``scratch``)."""
