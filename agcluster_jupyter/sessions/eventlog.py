"""A session's event log: gapless ``seq``, JSONL on disk, any number of live followers.

Each JSONL line is the event's JSON plus ``_rseq``, the runner's own number for it (0 for
events the server made), and ``_runner``, which runner it came from (a relaunched session
gets a new runner whose numbers start at 1 again).  So a restarted server knows where to
resubscribe to the runner it re-adopts, without losing or repeating anything.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Any

from pydantic import ValidationError

from ..events import Event, EventBase, now_iso, parse_event

__all__ = ["EventLog"]

log = logging.getLogger(__name__)


class EventLog:
    def __init__(self, session_id: str, path: Path | None = None) -> None:
        self.session_id = session_id
        self.path = path
        self._events: list[Event] = []
        #: the runner whose events are being appended, and the last of its numbers seen
        self.runner_id = ""
        self.last_rseq = 0
        self._rseq_by_runner: dict[str, int] = {}
        self._changed = asyncio.Event()
        self._closed = False
        self._file: IO[str] | None = None

    # -- persistence ----------------------------------------------------------------

    def load(self) -> None:
        """Read the JSONL file back (a torn last line from a crash is dropped)."""
        if self.path is None or not self.path.exists():
            return
        with self.path.open("r", encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    data: dict[str, Any] = json.loads(line)
                    rseq = int(data.pop("_rseq", 0))
                    runner = str(data.pop("_runner", ""))
                    event = parse_event(data)
                except (ValueError, ValidationError):
                    log.warning("%s:%d: unreadable event line dropped", self.path, lineno)
                    continue
                if event.seq != len(self._events) + 1:
                    log.warning("%s:%d: seq %d out of order, dropped", self.path, lineno, event.seq)
                    continue
                self._events.append(event)
                if rseq:
                    self._rseq_by_runner[runner] = rseq

    def use_runner(self, runner_id: str) -> None:
        """Append events of ``runner_id`` from now on; ``last_rseq`` is where it was."""
        self.runner_id = runner_id
        self.last_rseq = self._rseq_by_runner.get(runner_id, 0)

    def skip(self, rseq: int, *, exact: bool = False) -> None:
        """Continue after ``rseq``: a runner event that is not logged (it changed nothing
        a client sees), or, ``exact``, a cursor the runner told us to move to."""
        self.last_rseq = rseq if exact else max(self.last_rseq, rseq)
        self._rseq_by_runner[self.runner_id] = self.last_rseq

    def _write(self, event: EventBase, rseq: int) -> None:
        if self.path is None:
            return
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", encoding="utf-8")
            if self._file.tell() and not _ends_with_newline(self.path):
                self._file.write("\n")  # end a line torn by a crash before appending
        data = event.model_dump(mode="json")
        if rseq:
            data["_rseq"] = rseq
            data["_runner"] = self.runner_id
        self._file.write(json.dumps(data, separators=(",", ":"), ensure_ascii=False) + "\n")
        self._file.flush()

    def close(self) -> None:
        """Stop followers and close the file (the log stays readable in memory)."""
        self._closed = True
        self._wake()
        if self._file is not None:
            self._file.close()
            self._file = None

    def reopen(self) -> None:
        self._closed = False

    # -- events -----------------------------------------------------------------------

    @property
    def last_seq(self) -> int:
        return len(self._events)

    def append(self, event: Event, rseq: int = 0) -> Event:
        """Stamp ``seq``, ``session_id`` and ``ts``, persist, and wake every follower."""
        event.seq = len(self._events) + 1
        event.session_id = self.session_id
        event.ts = now_iso()
        self._write(event, rseq)
        self._events.append(event)
        if rseq:
            self.last_rseq = rseq
            self._rseq_by_runner[self.runner_id] = rseq
        self._wake()
        return event

    def since(self, after: int) -> list[Event]:
        return self._events[max(after, 0) :]

    def all(self) -> list[Event]:
        return list(self._events)

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def follow(self, after: int = 0) -> AsyncIterator[Event]:
        """Every event after ``after``, then new ones as they come, until the log closes."""
        pos = max(after, 0)
        while True:
            waiter = self._changed
            while pos < len(self._events):
                event = self._events[pos]
                pos += 1
                yield event
            if self._closed:
                return
            await waiter.wait()


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as fh:
        fh.seek(-1, 2)
        return fh.read(1) == b"\n"
