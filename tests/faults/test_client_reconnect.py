"""A client whose connection drops mid-stream, again and again, reconnecting with
``Last-Event-ID`` (what a browser's EventSource does by itself)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from .helpers import assert_gapless, event_log, slow_reply

pytestmark = pytest.mark.cli

DELTAS = 30


async def sse(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    """Events of an SSE response as they arrive, checking the framing."""
    fields: dict[str, str] = {}
    async for line in response.aiter_lines():
        if line:
            if not line.startswith(":"):
                name, _, value = line.partition(": ")
                fields[name] = value
            continue
        if "data" in fields:
            event = json.loads(fields["data"])
            assert fields["id"] == str(event["seq"]) and fields["event"] == event["type"]
            yield event
        fields = {}


async def test_a_client_dropping_mid_turn_reconnects_with_last_event_id(
    api: Any,
    launched: Any,
    scripted_model: Any,
    jp_http_port: int,
    jp_base_url: str,
    jp_auth_header: dict[str, str],
) -> None:
    """The chat's stream drops after a few deltas; the turn goes on (dropping is not
    interrupting).  The client reconnects to the session's events with
    ``Last-Event-ID`` and drops again every few events, four times: stitched together it
    has every event of the turn exactly once, in order, to ``done`` (the whole reply,
    each delta once), the same as a subscriber that never dropped and as the log."""
    scripted_model.add_scenarios([slow_reply("stream slowly", DELTAS, 0.04)])
    sid = (await launched())["session_id"]
    before = len(await event_log(api, sid))
    url = f"http://127.0.0.1:{jp_http_port}{jp_base_url}api/agcluster/agents/{sid}/"
    async with httpx.AsyncClient(headers=jp_auth_header, timeout=30) as client:
        steady: list[dict[str, Any]] = []

        async def follow() -> None:
            async with client.stream("GET", url + "events", params={"after": before}) as r:
                async for event in sse(r):
                    steady.append(event)
                    if event["type"] == "done":
                        return

        follower = asyncio.create_task(follow())
        got: list[dict[str, Any]] = []
        chat = client.stream(
            "POST",
            url + "chat",
            json={"message": "stream slowly please"},
            headers={"Accept": "text/event-stream"},
        )
        async with chat as response:
            assert response.status_code == 200
            async for event in sse(response):
                got.append(event)
                if sum(e["type"] == "text_delta" for e in got) == 5:
                    break  # the connection drops here
        drops = 1
        while got[-1]["type"] != "done":
            headers = {"Last-Event-ID": str(got[-1]["seq"])}
            async with client.stream("GET", url + "events", headers=headers) as response:
                assert response.status_code == 200
                received = 0
                async for event in sse(response):
                    got.append(event)
                    received += 1
                    if event["type"] == "done" or received == 6:
                        break
            drops += 1
        await asyncio.wait_for(follower, 30)

    assert drops >= 4, "the turn ended before the client could drop a few times"
    assert_gapless(got, first=before + 1)
    assert got == steady
    log = await event_log(api, sid)
    assert got == log[before:]
    text = "".join(e["text"] for e in got if e["type"] == "text_delta")
    assert text.split()[::3] == [f"d{i:03d}" for i in range(DELTAS)]
    assert not [e for e in got if e["type"] == "error"]
