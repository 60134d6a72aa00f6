"""A client that closes an event stream is normal: nothing at error level, no traceback,
no task left behind (``timeout 3 curl -N .../events`` used to log ``RuntimeError:
aclose(): asynchronous generator is already running``)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import pytest

from agcluster_jupyter.handlers import sse


async def test_closing_an_event_stream_logs_no_error(
    api: Any,
    launched: Any,
    jp_http_port: int,
    jp_base_url: str,
    jp_auth_header: dict[str, str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the server finds out the client is gone when it next writes: a heartbeat, soon
    monkeypatch.setattr(sse, "HEARTBEAT_SECONDS", 0.1)
    sid = (await launched())["session_id"]
    url = f"http://127.0.0.1:{jp_http_port}{jp_base_url}api/agcluster/agents/{sid}/events"
    caplog.set_level(logging.DEBUG)
    tasks_before = {t for t in asyncio.all_tasks() if not t.done()}
    async with httpx.AsyncClient(headers=jp_auth_header, timeout=30) as client:
        for _ in range(3):
            async with client.stream("GET", url) as response:
                assert response.status_code == 200
                async for _chunk in response.aiter_bytes():
                    break  # the backlog's first bytes, then the client goes away
    await asyncio.sleep(1.0)  # the server's heartbeats hit the closed connections
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage()[:300] for r in errors]
    assert "Traceback" not in caplog.text and "aclose()" not in caplog.text
    left = {t for t in asyncio.all_tasks() if not t.done()} - tasks_before
    assert not [t for t in left if "follow" in repr(t) or "anext" in repr(t)], left
