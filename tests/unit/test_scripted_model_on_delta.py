"""The scripted model's ``on_delta`` hook (one call per streamed content delta, in order,
as it is sent) and its streams leaving without Nagle delays."""

from __future__ import annotations

import json
import socket
import threading
from typing import Any

import httpx

from agcluster_jupyter.testing import RecordedRequest, ScriptedModelServer

KEY = "on-delta-key"
TEXT = "one two three four five six seven"  # three deltas of up to three words


def test_on_delta_sees_every_delta_in_order() -> None:
    calls: list[tuple[RecordedRequest, int, dict[str, Any], str]] = []

    def hook(request: RecordedRequest, index: int, data: dict[str, Any]) -> None:
        calls.append((request, index, data, threading.current_thread().name))

    script = [{"steps": [[{"thinking": "hmm"}, {"text": TEXT}]]}]
    with ScriptedModelServer(script, api_key=KEY, on_delta=hook) as server:
        response = httpx.post(
            f"{server.url}/v1/messages",
            headers={"x-api-key": KEY},
            json={"model": "m", "messages": [{"role": "user", "content": "go"}], "stream": True},
            timeout=10,
        )
        assert response.status_code == 200
        sent = [
            json.loads(line[6:])
            for line in response.text.splitlines()
            if line.startswith("data: ") and '"content_block_delta"' in line
        ]
        # thinking (1 piece + signature) then the text in three pieces
        assert len(sent) == 5
        assert [c[1] for c in calls] == list(range(5))
        assert [c[2] for c in calls] == sent
        assert all(c[0] is server.message_requests[0] for c in calls)
        assert {c[3] for c in calls} == {f"scripted-model:{server.port}"}  # its own loop
        texts = [c[2]["delta"].get("text") for c in calls if c[2]["delta"]["type"] == "text_delta"]
        assert "".join(texts) == TEXT


def test_no_hook_for_json_replies() -> None:
    calls: list[int] = []
    with ScriptedModelServer(
        [{"steps": ["hello there"]}], api_key=KEY, on_delta=lambda r, i, d: calls.append(i)
    ) as server:
        response = httpx.post(
            f"{server.url}/v1/messages",
            headers={"x-api-key": KEY},
            json={"model": "m", "messages": [{"role": "user", "content": "go"}]},
            timeout=10,
        )
        assert response.json()["content"][0]["text"] == "hello there"
    assert calls == []


def test_streams_are_sent_with_tcp_nodelay() -> None:
    """Without TCP_NODELAY an event waits for the (delayed, up to ~40 ms) ACK of the one
    before it: the first text delta of a reply arrived ~30 ms late."""
    options: list[int] = []

    def hook(request: RecordedRequest, index: int, data: dict[str, Any]) -> None:
        # on the server's loop, while the response streams; white-box: tornado's connections
        for connection in server._http._connections:  # type: ignore[union-attr]
            sock = connection.stream.socket
            options.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    payload = {"model": "m", "messages": [{"role": "user", "content": "go"}], "stream": True}
    with ScriptedModelServer([{"steps": ["one two"]}], api_key=KEY, on_delta=hook) as server:
        response = httpx.post(
            f"{server.url}/v1/messages", json=payload, headers={"x-api-key": KEY}, timeout=10
        )
        assert response.status_code == 200
    assert options and all(options), options
