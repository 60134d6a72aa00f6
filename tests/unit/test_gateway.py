"""The gateway against the scripted model: token check, key swap, metering, budgets."""

from __future__ import annotations

import json
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from agcluster_jupyter.gateway import Gateway, GatewaySession, StreamMeter, hash_token
from agcluster_jupyter.gateway.pricing import Pricing
from agcluster_jupyter.testing import ScriptedModelServer

UPSTREAM_KEY = "upstream-key"
SESSION_TOKEN = "session-token-abc"
BODY = {
    "model": "claude-test",
    "max_tokens": 100,
    "stream": True,
    "messages": [{"role": "user", "content": "hello"}],
}


@pytest.fixture
async def model() -> AsyncIterator[ScriptedModelServer]:
    async with ScriptedModelServer(api_key=UPSTREAM_KEY) as server:
        yield server


class Rig:
    def __init__(self, model: ScriptedModelServer, server_key: str | None) -> None:
        self.gateway = Gateway(model.url, lambda: server_key)
        self.folder = Path(tempfile.mkdtemp(dir="/tmp", prefix="agc-gw-"))
        self.socket = self.folder / "gateway.sock"

    def serve(self, **kwargs: Any) -> GatewaySession:
        session = GatewaySession(session_id="s1", token_hash=hash_token(SESSION_TOKEN), **kwargs)
        self.gateway.serve_unix(session, self.socket)
        return session

    def client(self) -> httpx.AsyncClient:
        transport = httpx.AsyncHTTPTransport(uds=str(self.socket))
        return httpx.AsyncClient(transport=transport, base_url="http://gateway", timeout=10)

    async def post(self, token: str = SESSION_TOKEN, body: Any = None) -> httpx.Response:
        async with self.client() as client:
            return await client.post(
                "/v1/messages?beta=true",
                json=BODY if body is None else body,
                headers={"x-api-key": token, "anthropic-version": "2023-06-01"},
            )


@pytest.fixture
async def rig(model: ScriptedModelServer) -> AsyncIterator[Rig]:
    rig = Rig(model, server_key=UPSTREAM_KEY)
    yield rig
    await rig.gateway.close()


def _error(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["x-should-retry"] == "false"
    body: dict[str, Any] = response.json()
    assert body["type"] == "error"
    return body["error"]


async def test_a_wrong_session_token_is_refused_without_reaching_upstream(
    rig: Rig, model: ScriptedModelServer
) -> None:
    rig.serve()
    response = await rig.post(token="guess")
    assert response.status_code == 401
    assert _error(response)["type"] == "authentication_error"
    assert model.requests == []


async def test_the_stream_passes_through_and_is_metered(
    rig: Rig, model: ScriptedModelServer
) -> None:
    session = rig.serve()
    response = await rig.post()
    assert response.status_code == 200
    assert "event: message_start" in response.text and "event: message_stop" in response.text
    upstream = model.message_requests[-1]
    # the upstream saw the real key, never the session token
    assert upstream.headers.get("X-Api-Key", upstream.headers.get("x-api-key")) == UPSTREAM_KEY
    assert SESSION_TOKEN not in json.dumps(upstream.headers)
    assert session.usage.input_tokens == upstream.info["usage"]["input_tokens"] > 0
    assert session.usage.output_tokens == upstream.info["usage"]["output_tokens"] > 0


async def test_json_responses_are_metered_too(rig: Rig, model: ScriptedModelServer) -> None:
    session = rig.serve()
    response = await rig.post(body={**BODY, "stream": False})
    assert response.status_code == 200 and response.json()["type"] == "message"
    assert session.usage.output_tokens == model.message_requests[-1].info["usage"]["output_tokens"]


async def test_the_budget_answers_an_anthropic_shaped_429(rig: Rig) -> None:
    session = rig.serve(token_budget=10)
    assert (await rig.post()).status_code == 200  # under budget when it started
    assert session.usage.total > 10
    response = await rig.post()
    assert response.status_code == 429
    error = _error(response)
    assert error["type"] == "rate_limit_error" and "budget of 10 tokens" in error["message"]


async def test_the_launch_key_wins_over_the_server_key(model: ScriptedModelServer) -> None:
    rig = Rig(model, server_key="wrong-server-key")
    try:
        rig.serve(api_key=UPSTREAM_KEY)
        assert (await rig.post()).status_code == 200
    finally:
        await rig.gateway.close()


async def test_no_key_at_all_says_how_to_give_one(model: ScriptedModelServer) -> None:
    rig = Rig(model, server_key=None)
    try:
        rig.serve()
        response = await rig.post()
        assert response.status_code == 401
        assert "ANTHROPIC_API_KEY" in _error(response)["message"]
    finally:
        await rig.gateway.close()


async def test_an_unreachable_upstream_is_a_502_not_a_hang() -> None:
    gateway = Gateway("http://127.0.0.1:9", lambda: "k")
    folder = Path(tempfile.mkdtemp(dir="/tmp", prefix="agc-gw-"))
    gateway.serve_unix(
        GatewaySession(session_id="s", token_hash=hash_token(SESSION_TOKEN)), folder / "g.sock"
    )
    try:
        transport = httpx.AsyncHTTPTransport(uds=str(folder / "g.sock"))
        async with httpx.AsyncClient(transport=transport, base_url="http://g") as client:
            response = await client.post(
                "/v1/messages", json=BODY, headers={"x-api-key": SESSION_TOKEN}
            )
        assert response.status_code == 502
        assert _error(response)["type"] == "api_error"
    finally:
        await gateway.close()


STREAM = (
    b"event: message_start\n"
    b'data: {"type":"message_start","message":{"usage":{"input_tokens":120,'
    b'"cache_read_input_tokens":30,"output_tokens":1}}}\n\n'
    b"event: content_block_delta\n"
    b'data: {"type":"content_block_delta","delta":{"type":"text_delta","text":"hi"}}\n\n'
    b"event: message_delta\n"
    b'data: {"type":"message_delta","usage":{"output_tokens":42}}\n\n'
)


@given(st.lists(st.integers(min_value=1, max_value=len(STREAM)), max_size=12))
def test_the_meter_reads_usage_however_the_stream_is_cut(cuts: list[int]) -> None:
    meter = StreamMeter()
    points = sorted(set(cuts))
    for start, end in zip([0, *points], [*points, len(STREAM)], strict=True):
        meter.feed(STREAM[start:end])
    usage = meter.call.usage("claude-opus-5", Pricing())
    assert usage.input_tokens == 150  # cache reads count as input
    assert usage.output_tokens == 42
    # priced as the CLI does: $4 in, 0.1 × that for cache reads, $20 out, per million
    assert usage.cost_usd == pytest.approx((120 * 4 + 30 * 0.4 + 42 * 20) / 1e6)


async def test_remote_runners_share_one_tcp_listener_told_apart_by_token(
    model: ScriptedModelServer,
) -> None:
    gateway = Gateway(model.url, lambda: UPSTREAM_KEY)
    try:
        port = gateway.serve_tcp("127.0.0.1", 0)
        assert gateway.serve_tcp("127.0.0.1", 0) == port  # one listener, opened once
        a = GatewaySession(session_id="a", token_hash=hash_token("token-a"))
        b = GatewaySession(session_id="b", token_hash=hash_token("token-b"), token_budget=1)
        gateway.register_remote(a)
        gateway.register_remote(b)

        async def post(token: str) -> httpx.Response:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as c:
                return await c.post(
                    "/v1/messages",
                    json={**BODY, "stream": False},
                    headers={"Authorization": f"Bearer {token}"},
                )

        assert (await post("token-a")).status_code == 200
        assert a.usage.total > 0 and b.usage.total == 0  # metered on the caller's session
        assert (await post("token-b")).status_code == 200
        assert (await post("token-b")).status_code == 429  # b's own budget, not a's
        assert (await post("token-a")).status_code == 200
        refused = await post("a-guess")
        assert refused.status_code == 401 and _error(refused)["type"] == "authentication_error"
        # a stopped session's token is worthless at once
        requests_before = len(model.requests)
        gateway.stop_serving("a")
        assert (await post("token-a")).status_code == 401
        assert len(model.requests) == requests_before
    finally:
        await gateway.close()
