"""Which Jupyter server owns which session, when several share one ``state_root``.

A user often runs several Jupyter servers (one ``jupyter lab`` per project), and
``state_root`` (in the user's Jupyter data dir) is theirs in common.  Each server registers
itself in ``<state_root>/servers/<server_id>.json`` (its pid, the pid's start time, the
host) and every session record names the server that owns it.  A server lists, reaps,
stops and re-adopts only its own sessions and those whose server is gone: it never
touches a session another live server owns, and a session whose server died is taken
over by the next server that starts with that state.  Recoveries take turns under one
lock (``flock``), so two servers starting together never adopt the same session.

"Live": on this host, the registered pid runs and started when registered (a reused pid
is not the server); on another host (a shared network folder), the registration was
refreshed within ``STALE_SECONDS`` (each server refreshes it from its reaper loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["STALE_SECONDS", "Ownership", "ServerIdentity", "process_start_time"]

#: a registration of another host not refreshed for this long is a server that is gone
STALE_SECONDS = 300.0


def process_start_time(pid: int) -> str | None:
    """The start time of process ``pid`` (clock ticks since boot), None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if stat[0] in ("Z", "X") else stat[19]


@dataclass(frozen=True)
class ServerIdentity:
    server_id: str
    pid: int
    start: str
    host: str

    @classmethod
    def current(cls) -> ServerIdentity:
        pid = os.getpid()
        return cls(uuid.uuid4().hex, pid, process_start_time(pid) or "", socket.gethostname())


class Ownership:
    """This server's registration under ``state_root`` and its view of the others."""

    def __init__(self, state_root: Path, me: ServerIdentity | None = None) -> None:
        self.folder = state_root / "servers"
        self.me = me or ServerIdentity.current()
        self._lock_path = state_root / ".recovery.lock"

    @property
    def server_id(self) -> str:
        return self.me.server_id

    def _path(self, server_id: str) -> Path:
        return self.folder / f"{server_id}.json"

    def register(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self._path(self.me.server_id)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(asdict(self.me), fh)
        os.replace(tmp, path)

    def refresh(self) -> None:
        """Say this server is still here (for servers on other hosts)."""
        with contextlib.suppress(OSError):
            os.utime(self._path(self.me.server_id))

    def unregister(self) -> None:
        with contextlib.suppress(OSError):
            self._path(self.me.server_id).unlink()

    def is_live(self, server_id: str) -> bool:
        """Is the server ``server_id`` (another one) running now?"""
        if not server_id:
            return False
        if server_id == self.me.server_id:
            return True
        path = self._path(server_id)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            mtime = path.stat().st_mtime
            other = ServerIdentity(**data)
        except (OSError, ValueError, TypeError):
            return False
        if other.host != self.me.host:
            return time.time() - mtime < STALE_SECONDS
        return process_start_time(other.pid) == other.start != ""

    def owned_elsewhere(self, server_id: str) -> bool:
        """Does another live server own what ``server_id`` names?"""
        return bool(server_id) and server_id != self.me.server_id and self.is_live(server_id)

    def forget_dead(self) -> None:
        """Remove the registrations of servers that are gone."""
        for path in self.folder.glob("*.json") if self.folder.is_dir() else []:
            if path.stem != self.me.server_id and not self.is_live(path.stem):
                with contextlib.suppress(OSError):
                    path.unlink()

    @contextlib.asynccontextmanager
    async def recovery_lock(self) -> AsyncIterator[None]:
        """One server recovers (and adopts) at a time; waiting is off the event loop."""
        self._lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
