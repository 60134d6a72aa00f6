"""The warm pool: sessions started ahead of time so a launch is a claim.

A pooled session is a whole session — workspace, gateway socket with its token, a runner
whose claude CLI is already connected with the pool's preset config — that no user owns
yet and nobody can see.  A launch of that preset (no inline config) takes one: the
launch's key and name are attached in memory, the session becomes visible, and the pool
refills in the background.  Works with every provider.

Pooled sessions are marked in their record; a restarted server removes them (their
records and workspaces are empty) instead of re-adopting them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from ..config import AgentConfig
from .session import Session

__all__ = ["WarmPool"]

log = logging.getLogger(__name__)

#: seconds between refill attempts after a failure, doubling up to the cap
_RETRY_FIRST, _RETRY_CAP = 2.0, 120.0


class WarmPool:
    def __init__(
        self,
        config: AgentConfig,
        size: int,
        start: Callable[[AgentConfig], Awaitable[Session]],
        discard: Callable[[Session], Coroutine[Any, Any, None]],
    ) -> None:
        self.config = config
        self.size = size
        self._start = start
        self._discard = discard
        self._ready: list[Session] = []
        self._filling: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._closed = False

    @property
    def available(self) -> int:
        return len(self._ready)

    def matches(self, config: AgentConfig) -> bool:
        return config == self.config

    def start(self) -> None:
        if self.size > 0 and self._filling is None:
            self._filling = asyncio.create_task(self._fill_forever(), name="agcluster-pool")

    def claim(self) -> Session | None:
        """A ready pooled session, or None (the caller starts one cold)."""
        while self._ready:
            session = self._ready.pop(0)
            self._wake.set()
            if session.state in {"ready", "idle"}:
                return session
            # it died while waiting: let the refill loop replace it
            asyncio.create_task(self._discard(session))
        self._wake.set()
        return None

    async def _fill_forever(self) -> None:
        delay = _RETRY_FIRST
        while not self._closed:
            if len(self._ready) >= self.size:
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                session = await self._start(self.config)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a pool must outlive a bad engine
                log.warning("warm pool: could not start a session (%s); retrying", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RETRY_CAP)
                continue
            delay = _RETRY_FIRST
            # warm means the CLI is connected too, not merely the runner answering
            if not await session.wait_connected():
                log.warning("warm pool: session %s never connected its CLI", session.id)
                await self._discard(session)
                continue
            if self._closed:
                await self._discard(session)
                return
            self._ready.append(session)

    async def close(self) -> None:
        self._closed = True
        if self._filling is not None:
            self._filling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._filling
        sessions, self._ready = self._ready, []
        await asyncio.gather(*(self._discard(s) for s in sessions), return_exceptions=True)
