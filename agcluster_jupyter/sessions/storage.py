"""The storage limit (``resource_limits.storage``), enforced by measuring.

A container engine on overlay2 over ext4 cannot cap a bind mount (``storage_opt size``
only caps the container's own writable layer, which is read-only here anyway), and the
local provider has no container at all.  So the guard measures what the agent can fill
on the host, its workspace plus its agent state folder (the CLI's transcripts and the
``TMPDIR`` its tools write to), off the event loop:

- before each turn: over the limit → the message is refused (413);
- every ``interval`` seconds while a turn runs: over the limit → an ``error`` event with
  code ``storage_limit`` and the turn is interrupted;
- when a turn ends: over the limit → the same ``error`` before its ``done``;
- on upload: a body that would take the workspace over the limit → 413.

In a folder workspace (a folder of the user's tree) the limit counts what the session
adds to what the folder held at launch.

Usage is counted as ``du`` does: allocated blocks, hard links once, symlinks not
followed.  An agent can overshoot by what it writes within one interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from ..errors import AgClusterError, TooLarge
from ..events import ErrorEvent
from ..units import format_bytes

if TYPE_CHECKING:
    from .session import Session

__all__ = ["StorageGuard"]

log = logging.getLogger(__name__)


class StorageGuard:
    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._watchers: dict[str, asyncio.Task[None]] = {}
        #: the turn (its start time) whose storage_limit error was logged already
        self._reported: dict[str, float] = {}

    async def used(self, session: Session) -> int:
        """The workspace and the agent state (measured by the runner on its volume for a
        remote session, which also caps it physically); in a folder workspace, what it
        holds beyond what it held at launch (the user's own data is not the agent's)."""
        try:
            usage = await session.workspace.usage()
            return max(0, usage - session.record.workspace_baseline_bytes)
        except AgClusterError as exc:
            log.info("session %s: no storage measurement: %s", session.id, exc.message)
            return 0

    def _limit(self, session: Session) -> tuple[int, str]:
        limits = session.record.config.resource_limits
        return limits.storage_bytes, limits.storage

    async def check(self, session: Session, extra_bytes: int = 0, *, what: str = "") -> None:
        """Raise ``TooLarge`` (413) if ``extra_bytes`` more would exceed the limit."""
        limit, text = self._limit(session)
        used = await self.used(session)
        if used + extra_bytes <= limit:
            return
        if extra_bytes:
            raise TooLarge(
                f"{what or 'this'} ({format_bytes(extra_bytes)}) would take the workspace over "
                f"its storage limit: {format_bytes(used)} of {text} used",
                field="files",
            )
        raise TooLarge(
            f"the workspace uses {format_bytes(used)}, over its storage limit of {text} "
            "(resource_limits.storage); delete files from it (Jupyter's file browser) first"
        )

    async def before_turn(self, session: Session) -> None:
        """Refuse a turn over the limit; watch the turn while it runs."""
        await self.check(session)
        self.watch(session)

    def watch(self, session: Session) -> None:
        task = self._watchers.get(session.id)
        if task is None or task.done():
            self._watchers[session.id] = asyncio.create_task(
                self._watch(session), name=f"storage-{session.id}"
            )

    async def _watch(self, session: Session) -> None:
        # the turn becomes busy once the runner took the message; idle ends the watch
        await asyncio.sleep(self.interval)
        while session.state == "busy":
            try:
                event = await self.turn_error(session)
                if event is not None:
                    session.log.append(event)
                    with contextlib.suppress(Exception):
                        await session.interrupt()
                    return
            except Exception:
                log.exception("session %s: storage check failed", session.id)
            await asyncio.sleep(self.interval)

    async def turn_error(self, session: Session) -> ErrorEvent | None:
        """The ``storage_limit`` error for the running turn, once per turn, or None."""
        if self._reported.get(session.id) == session.turn_started:
            return None
        limit, text = self._limit(session)
        used = await self.used(session)
        if used <= limit:
            return None
        self._reported[session.id] = session.turn_started
        return ErrorEvent(
            code="storage_limit",
            message=(
                f"storage limit: the workspace uses {format_bytes(used)}, over its "
                f"{text} (resource_limits.storage); the turn was stopped. Delete files "
                "before the next message."
            ),
        )

    def forget(self, session_id: str) -> None:
        task = self._watchers.pop(session_id, None)
        if task is not None:
            task.cancel()
        self._reported.pop(session_id, None)

    async def close(self) -> None:
        tasks = list(self._watchers.values())
        self._watchers.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
