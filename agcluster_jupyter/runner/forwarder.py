"""TCP 127.0.0.1:<port> → the gateway's unix socket, because the CLI only speaks TCP.

A plain byte pump both ways per connection; each direction's EOF is passed on as a
half-close so HTTP keep-alive and streamed bodies behave as on a direct connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

__all__ = ["Forwarder"]

log = logging.getLogger(__name__)

_CHUNK = 64 * 1024


class Forwarder:
    """Listens on loopback; every connection is piped to ``target`` (a unix socket path)."""

    def __init__(self, target: str, host: str = "127.0.0.1") -> None:
        self.target = target
        self.host = host
        self.port = 0
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._accept, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._conns):
            task.cancel()
        for task in list(self._conns):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conns.add(task)
        try:
            try:
                up_reader, up_writer = await asyncio.open_unix_connection(self.target)
            except OSError as exc:
                log.warning("gateway socket %s unreachable: %s", self.target, exc)
                return
            try:
                await asyncio.gather(_pump(reader, up_writer), _pump(up_reader, writer))
            finally:
                _close(up_writer)
        finally:
            _close(writer)
            self._conns.discard(task)


async def _pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    try:
        while data := await src.read(_CHUNK):
            dst.write(data)
            await dst.drain()
        if dst.can_write_eof():
            dst.write_eof()
    except (ConnectionError, OSError):
        # one side went away: drop the other too, so its pump ends as well
        dst.close()


def _close(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        writer.close()
