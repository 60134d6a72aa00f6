"""Checkpoints kept by the runner, on the session's volume (``kubernetes``, ``fly``):
every call of the :class:`~.protocol.Checkpoints` contract goes over the runner channel
to ``runner/checkpoints.py``, which runs the same :class:`~.history.CheckpointHistory`
the server runs for docker and local sessions.  Errors come back as the runner's
``{message, field?}`` with their status, and are raised here as the same errors."""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Any

import httpx

from ..workspace.remote import ChannelFactory, raise_for_runner, runner_not_running
from .store import SnapshotStore
from .transfer import read_objects

__all__ = ["RemoteCheckpoints"]

#: a checkpoint walks the whole workspace: give it time on a big one
CALL_TIMEOUT = 300.0
#: how long a starting runner (503) is waited for
BOOT_WAIT = 60.0
_CHUNK = 1024 * 1024


class RemoteCheckpoints:
    def __init__(self, channel: ChannelFactory) -> None:
        self._channel = channel
        self.known_count = 0

    async def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> Any:
        deadline = time.monotonic() + BOOT_WAIT
        delay = 0.05
        try:
            async with self._channel(CALL_TIMEOUT) as client:
                while True:
                    response = await client.request(method, path, json=body, params=params)
                    # a runner still loading the SDK answers 503 for a moment (the first
                    # turn's checkpoint, a fork's seed right after its launch)
                    if response.status_code != 503 or time.monotonic() + delay > deadline:
                        break
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 1.0)
                await raise_for_runner(response)
                return response.json()
        except httpx.HTTPError as exc:
            raise runner_not_running(f"{type(exc).__name__}: {exc}") from None

    async def begin_turn(self, turn: int, prompt: str) -> None:
        reply = await self._call("POST", f"/checkpoints/{turn}/begin", {"prompt": prompt})
        self.known_count = int(reply["total"])

    async def end_turn(self, turn: int, anchor: dict[str, str] | None) -> dict[str, int] | None:
        reply = await self._call("POST", f"/checkpoints/{turn}/end", {"anchor": anchor})
        self.known_count = int(reply["total"])
        summary: dict[str, int] | None = reply["summary"]
        return summary

    async def listing(self) -> dict[str, Any]:
        reply: dict[str, Any] = await self._call("GET", "/checkpoints")
        self.known_count = int(reply["total"])
        return reply

    async def diff(self, turn: int, path: str | None) -> dict[str, Any]:
        params = None if path is None else {"path": path}
        reply: dict[str, Any] = await self._call("GET", f"/checkpoints/{turn}/diff", params=params)
        return reply

    async def restore(self, turn: int, paths: list[str] | None) -> list[str]:
        reply = await self._call("POST", f"/checkpoints/{turn}/restore", {"paths": paths})
        return list(reply["restored"])

    async def peek_undo(self) -> dict[str, Any]:
        reply: dict[str, Any] = await self._call("GET", "/checkpoints/undo")
        return reply

    async def undo(self) -> list[str]:
        return list((await self._call("POST", "/checkpoints/undo", {}))["restored"])

    async def rewind_point(self, turn: int) -> dict[str, str] | None:
        point: dict[str, str] | None = (
            await self._call("GET", f"/checkpoints/{turn}/rewind-point")
        )["point"]
        return point

    async def rewind_files(self, turn: int, conversation: str | None) -> list[str]:
        reply = await self._call(
            "POST", f"/checkpoints/{turn}/rewind-files", {"conversation": conversation}
        )
        return list(reply["restored"])

    async def export(self, turn: int | None, out: IO[bytes]) -> None:
        await self.listing()  # waits out a starting runner; a stream cannot be sent twice
        params = {} if turn is None else {"turn": str(turn)}
        try:
            async with self._channel(CALL_TIMEOUT) as client:
                request = client.build_request("GET", "/checkpoints/export", params=params)
                response = await client.send(request, stream=True)
                try:
                    await raise_for_runner(response)
                    async for chunk in response.aiter_bytes(_CHUNK):
                        await asyncio.to_thread(out.write, chunk)
                finally:
                    await response.aclose()
        except httpx.HTTPError as exc:
            raise runner_not_running(f"{type(exc).__name__}: {exc}") from None

    async def seed(self, stream: IO[bytes]) -> int:
        await self.listing()  # waits out a starting runner; a stream cannot be sent twice

        async def body() -> AsyncIterator[bytes]:
            while chunk := await asyncio.to_thread(stream.read, _CHUNK):
                yield chunk

        try:
            async with self._channel(CALL_TIMEOUT) as client:
                response = await client.put("/checkpoints/seed", content=body())
                await raise_for_runner(response)
                return int(response.json()["files"])
        except httpx.HTTPError as exc:
            raise runner_not_running(f"{type(exc).__name__}: {exc}") from None

    async def materialize(self, scratch: Path) -> tuple[SnapshotStore, bytes]:
        store = SnapshotStore(scratch / "store", scratch / "no-workspace")
        with tempfile.TemporaryFile(dir=scratch) as spool:
            await self.export(None, spool)
            spool.seek(0)
            tree = await asyncio.to_thread(read_objects, store, spool)
        return store, tree
