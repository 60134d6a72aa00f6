"""Open notebooks, between JupyterLab and the agents' edits (without real-time collaboration).

JupyterLab holds an open notebook in the page; the tools write the file.  Two things keep
the user's work safe and the page current:

- :class:`OpenNotebooks`: the page reports which open notebooks have unsaved changes
  (``PUT notebooks/open``, repeated while they stay unsaved).  An edit of one of them is
  refused as stale, so the agent never writes under the user's typing; the agent reads it
  again once the user saved.  A report expires after :data:`DIRTY_TTL` seconds without a
  repeat (a closed tab, a lost page).
- :class:`EditFeed`: every edit the tools made, numbered; the page long-polls it
  (``GET notebooks/edits?after=N``) and reloads an open notebook that has no unsaved
  changes, so the agent's cells appear without a "file changed on disk" dialog.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

__all__ = ["DIRTY_TTL", "EditFeed", "OpenNotebooks"]

#: seconds an "unsaved changes" report holds without being repeated
DIRTY_TTL = 60.0
#: edits the feed keeps for pages that poll late
FEED_SIZE = 500


class OpenNotebooks:
    """Which notebooks a page holds with unsaved changes (per page, expiring)."""

    def __init__(self, ttl: float = DIRTY_TTL) -> None:
        self.ttl = ttl
        #: (path, page) -> when the report expires (monotonic)
        self._dirty: dict[tuple[str, str], float] = {}

    def report(self, path: str, page: str, dirty: bool) -> None:
        if dirty:
            self._dirty[(path, page)] = time.monotonic() + self.ttl
        else:
            self._dirty.pop((path, page), None)

    def dirty(self, path: str) -> bool:
        now = time.monotonic()
        for key, until in list(self._dirty.items()):
            if until <= now:
                del self._dirty[key]
        return any(p == path for p, _ in self._dirty)


@dataclass(frozen=True)
class FeedItem:
    n: int
    path: str
    version: str
    session_id: str

    def to_json(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "path": self.path,
            "version": self.version,
            "session_id": self.session_id,
        }


class EditFeed:
    """The tools' edits, numbered from 1 in this server process; waitable."""

    def __init__(self, size: int = FEED_SIZE) -> None:
        self._items: deque[FeedItem] = deque(maxlen=size)
        self.last = 0
        self._changed = asyncio.Event()

    def publish(self, path: str, version: str, session_id: str) -> None:
        self.last += 1
        self._items.append(FeedItem(self.last, path, version, session_id))
        self._changed.set()
        self._changed = asyncio.Event()

    def after(self, n: int) -> list[FeedItem]:
        return [item for item in self._items if item.n > n]

    async def wait(self, after: int, timeout: float) -> list[FeedItem]:
        """The edits after ``after``, waiting up to ``timeout`` s for one."""
        if after > self.last:  # a cursor of an earlier server process: start over
            after = 0
        items = self.after(after)
        if items or timeout <= 0:
            return items
        changed = self._changed
        try:
            await asyncio.wait_for(changed.wait(), timeout)
        except asyncio.TimeoutError:
            return []
        return self.after(after)
