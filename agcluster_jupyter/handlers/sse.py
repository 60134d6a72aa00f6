"""Writing an event stream as SSE: framing, heartbeats, and a client that went away."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from tornado.iostream import StreamClosedError
from tornado.web import RequestHandler

from ..events import Event, format_sse

__all__ = ["HEARTBEAT_SECONDS", "SSE_CONTENT_TYPE", "start_sse", "write_events"]

SSE_CONTENT_TYPE = "text/event-stream; charset=utf-8"

#: a comment line is sent when nothing else was for this long (proxies drop idle streams)
HEARTBEAT_SECONDS = 15.0


def start_sse(handler: RequestHandler) -> None:
    handler.set_header("Content-Type", SSE_CONTENT_TYPE)
    handler.set_header("Cache-Control", "no-cache, no-transform")
    handler.set_header("X-Accel-Buffering", "no")  # nginx (JupyterHub's proxy setups)


async def write_events(
    handler: RequestHandler,
    events: AsyncIterator[Event],
    *,
    until_done: bool = False,
    heartbeat: float | None = None,
) -> bool:
    """Stream ``events`` as SSE; returns False when the client went away first.

    Heartbeats every ``heartbeat`` seconds (default ``HEARTBEAT_SECONDS``) of silence.
    A client going away is normal: nothing is logged above debug."""
    beat = HEARTBEAT_SECONDS if heartbeat is None else heartbeat
    iterator = events.__aiter__()
    pending: asyncio.Task[Event] | None = None
    try:
        await handler.flush()
        while True:
            if pending is None:
                pending = asyncio.ensure_future(iterator.__anext__())
            done, _ = await asyncio.wait({pending}, timeout=beat)
            if not done:
                handler.write(b": heartbeat\n\n")
                await handler.flush()
                continue
            task, pending = pending, None
            try:
                event = task.result()
            except StopAsyncIteration:
                return True
            handler.write(format_sse(event))
            await handler.flush()
            if until_done and event.type == "done":
                return True
    except StreamClosedError:
        return False
    finally:
        if pending is not None:
            # the generator is inside this __anext__: it must have stopped before aclose,
            # or aclose finds it "already running"
            pending.cancel()
            await asyncio.wait({pending})  # (its outcome is not ours to raise)
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(RuntimeError):  # closed already by the cancel
                await aclose()
