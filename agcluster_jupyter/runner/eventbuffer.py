"""The runner's event buffer: what ``GET /events`` subscribers read.

:class:`EventBuffer` numbers every emitted event with ``rseq`` (from 1, gapless) and keeps
the last :data:`BUFFER_SIZE` as NDJSON lines; each subscriber reads at its own cursor, so
every subscriber gets every event once and in order, and one that fell behind the buffer
gets a ``gap`` line saying from where.  The last ``rseq`` is kept in a file in the state
dir (:data:`RSEQ_FILE`) so a restarted runner continues the count.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections import deque
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

from ..events import EventBase

__all__ = ["BUFFER_SIZE", "RSEQ_FILE", "EventBuffer"]

log = logging.getLogger(__name__)

#: events kept for ``GET /events?after=`` replays
BUFFER_SIZE = 10_000
#: the last rseq, in the state dir, so a restarted runner continues the count
RSEQ_FILE = "runner-rseq"


class EventBuffer:
    """``rseq``-numbered NDJSON lines, the last ``maxlen`` kept, with change notification.

    With ``counter`` (a file in the state dir) the last rseq survives the process, and a
    runner restarted on the same state dir continues the count: the server's cursor
    (``after=``) stays valid across runner restarts.
    """

    def __init__(self, maxlen: int = BUFFER_SIZE, counter: Path | None = None) -> None:
        self._lines: deque[tuple[int, bytes]] = deque(maxlen=maxlen)
        #: the last rseq of the previous runner process on this state dir (0 if none)
        self.base = 0
        self.last_rseq = 0
        self.closed = False
        self._changed = asyncio.Event()
        self._subscribers = 0
        self._counter_fd: int | None = None
        if counter is not None:
            self._open_counter(counter)

    def _open_counter(self, path: Path) -> None:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            log.warning("rseq counter %s unusable (%s); counting from 1", path, exc)
            return
        text = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
        self.last_rseq = self.base = int(text) if text.isdigit() else 0
        self._counter_fd = fd

    def append(self, event: EventBase) -> int:
        return self.append_line({"event": event.model_dump(mode="json")})

    def append_line(self, payload: dict[str, Any]) -> int:
        """A line for the server that is no event (a ``tool_call``): numbered like one."""
        self.last_rseq += 1
        if self._counter_fd is not None:
            # one fixed-width pwrite per event: a killed runner leaves a whole number
            try:
                os.pwrite(self._counter_fd, b"%20d\n" % self.last_rseq, 0)
            except OSError as exc:
                log.warning("rseq counter not written (%s); no longer persisted", exc)
                os.close(self._counter_fd)
                self._counter_fd = None
        line = {"rseq": self.last_rseq, **payload}
        self._lines.append((self.last_rseq, _ndjson(line)))
        self._wake()
        return self.last_rseq

    @contextlib.contextmanager
    def subscribed(self) -> Iterator[None]:
        """Count a subscriber for as long as its stream is open (see :meth:`drained`)."""
        self._subscribers += 1
        try:
            yield
        finally:
            self._subscribers -= 1
            self._wake()

    async def drained(self, timeout: float) -> bool:
        """After :meth:`close`: wait until every stream has sent its last line."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self._subscribers:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return False
            changed = self._changed
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(changed.wait(), left)
        return True

    def close(self) -> None:
        """No more events: subscribers drain what is left and end their streams."""
        self.closed = True
        self._wake()
        if self._counter_fd is not None:
            os.close(self._counter_fd)
            self._counter_fd = None

    @property
    def first_rseq(self) -> int:
        """The oldest rseq still buffered (``last_rseq + 1`` while empty)."""
        return self._lines[0][0] if self._lines else self.last_rseq + 1

    def read(self, cursor: int) -> tuple[list[bytes], int]:
        """The lines after ``cursor`` (a gap marker first if some are gone) and the new cursor."""
        if cursor >= self.last_rseq:
            return [], cursor
        # numbers up to ``base`` belong to earlier runner processes: not ours to replay,
        # and nothing this process lost either
        cursor = max(cursor, self.base)
        first = self.first_rseq
        out: list[bytes] = []
        if cursor < first - 1:
            # the buffer dropped cursor+1 … first-1: say so rather than skip silently
            out.append(_ndjson({"rseq": first - 1, "gap": True, "from": cursor + 1}))
            cursor = first - 1
        out.extend(line for _, line in islice(self._lines, cursor + 1 - first, None))
        return out, self.last_rseq

    async def wait(self, cursor: int, timeout: float) -> bool:
        """Wait until there is something after ``cursor`` (or the end); False on timeout."""
        if self.last_rseq > cursor or self.closed:
            return True
        changed = self._changed
        try:
            await asyncio.wait_for(changed.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    def events(self, after: int = 0) -> list[dict[str, Any]]:
        """The buffered lines after ``after`` as dicts (for tests and debugging)."""
        return [json.loads(line) for _, line in self._lines if _ > after]

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()


def _ndjson(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj, separators=(",", ":"), ensure_ascii=False) + "\n").encode()
