"""The gateway lends the key for the CLI's model calls and nothing else: routes, query
parameters, headers, models, the body cap, the dollar budget, the key never coming back;
a hypothesis property over method, path, query and headers (a disallowed route is never
forwarded, nothing is a 500).

The gateway runs on an event loop of its own thread here, so plain (sync) tests and
hypothesis drive it over its unix socket as a runner would.
"""

from __future__ import annotations

import asyncio
import json
import logging
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agcluster_jupyter.gateway import Gateway, GatewayPolicy, GatewaySession, hash_token
from agcluster_jupyter.gateway.pricing import ModelPrice, Pricing
from agcluster_jupyter.gateway.routes import RoutePolicy, parse_route
from agcluster_jupyter.testing import ScriptedModelServer

KEY = "sk-upstream-secret-key"
TOKEN = "session-token-xyz"
BODY = {"model": "claude-test", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}
#: what the issue found forwarded with the real key, and its look-alikes
REFUSED_PATHS = [
    "/v1/files",
    "/v1/files/file_123",
    "/v1/messages/batches",
    "/v1/models",
    "/v1/organizations/me",
    "/v1/messages/../files",
    "/v1/messages/%2e%2e/files",
    "/v1/messages%2F..%2Ffiles",
    "//v1/messages",
    "/v1/Messages",
    "/v1/messages/",
    "/v1/messages/count_tokens/../../files",
    "/api/hello",
    "/",
]
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]


class Rig:
    """A gateway with one session on a unix socket, on a loop of its own thread."""

    def __init__(self, model: ScriptedModelServer, policy: GatewayPolicy | None = None) -> None:
        self.model = model
        self.folder = Path(tempfile.mkdtemp(dir="/tmp", prefix="agc-gwp-"))
        self.socket = self.folder / "gateway.sock"
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.refusals: list[str] = []
        self.gateway: Gateway = self.run(self._make(policy))

    async def _make(self, policy: GatewayPolicy | None) -> Gateway:
        return Gateway(self.model.url, lambda: KEY, policy)

    def run(self, coro: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(30)

    def serve(self, **kwargs: Any) -> GatewaySession:
        session = GatewaySession(session_id="s1", token_hash=hash_token(TOKEN), **kwargs)
        session.on_refused = self.refusals.append

        async def serve() -> None:
            self.gateway.serve_unix(session, self.socket)

        self.run(serve())
        return session

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = BODY,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        transport = httpx.HTTPTransport(uds=str(self.socket))
        with httpx.Client(transport=transport, base_url="http://gateway", timeout=30) as c:
            raw = content if content is not None else json.dumps(body).encode()
            request = c.build_request(
                method,
                "http://gateway" + path,
                content=raw if method not in ("GET", "HEAD") else None,
                headers={"x-api-key": TOKEN, "content-type": "application/json", **(headers or {})},
            )
            request.url = request.url.copy_with(raw_path=path.encode())  # as sent, undecoded
            return c.send(request)

    def close(self) -> None:
        self.run(self.gateway.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture(scope="module")
def model() -> Iterator[ScriptedModelServer]:
    script = [
        {"match": "echo the key", "steps": [], "final": f"the key is {KEY} indeed"},
        {"match": "fail with the key", "steps": [[{"error": 400, "message": f"bad {KEY}"}]]},
    ]
    with ScriptedModelServer(script, api_key=KEY) as server:
        yield server


@pytest.fixture
def rig(model: ScriptedModelServer) -> Iterator[Rig]:
    model.reset()
    rig = Rig(model)
    rig.serve()
    yield rig
    rig.close()


def _error(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["x-should-retry"] == "false"
    body: dict[str, Any] = response.json()
    assert body["type"] == "error"
    return body["error"]


# -- routes ------------------------------------------------------------------------------------


@pytest.mark.parametrize("auth", ["x-api-key", "bearer"])
def test_every_other_route_is_refused_and_never_forwarded(
    rig: Rig, auth: str, caplog: pytest.LogCaptureFixture
) -> None:
    headers = {"x-api-key": ""} if auth == "bearer" else {}
    if auth == "bearer":
        headers["Authorization"] = f"Bearer {TOKEN}"
    caplog.set_level(logging.WARNING, logger="agcluster_jupyter.gateway.proxy")
    for path in REFUSED_PATHS:
        for method in METHODS:
            response = rig.request(method, path, headers=headers)
            assert response.status_code == 403, (method, path, response.text)
            if method != "HEAD":
                error = _error(response)
                assert error["type"] == "permission_error"
                assert error["message"].startswith("not allowed through the agcluster gateway: ")
                assert f"{method} " in error["message"]
    # the model's own routes by other methods too
    for method in ("GET", "PUT", "DELETE", "PATCH"):
        assert rig.request(method, "/v1/messages").status_code == 403
    assert rig.model.requests == []  # not one of them reached the model
    # the session's log heard of the first of them, the server's log too (with its id)
    assert len(rig.refusals) == 20 and "counted, not logged" in rig.refusals[-1]
    assert "s1" in caplog.text and "GET /v1/files" in caplog.text


def test_the_clis_calls_go_through(rig: Rig) -> None:
    assert rig.request("POST", "/v1/messages?beta=true").status_code == 200
    assert rig.request("POST", "/v1/messages").status_code == 200
    counted = rig.request("POST", "/v1/messages/count_tokens?beta=true")
    assert counted.status_code == 200 and counted.json()["input_tokens"] > 0
    assert [r.path for r in rig.model.requests] == [
        "/v1/messages?beta=true",
        "/v1/messages",
        "/v1/messages/count_tokens?beta=true",
    ]


def test_query_parameters_outside_the_route_are_refused(rig: Rig) -> None:
    for query in ("?beta=true&foo=1", "?x", "?beta=true&beta=false&limit=5", "?=&&"):
        response = rig.request("POST", f"/v1/messages{query}")
        assert response.status_code == 403, query
    assert rig.model.requests == []


def test_a_wrong_token_is_401_and_not_a_refusal_of_the_session(rig: Rig) -> None:
    response = rig.request("POST", "/v1/files", headers={"x-api-key": "guess"})
    assert response.status_code == 401 and _error(response)["type"] == "authentication_error"
    assert rig.refusals == [] and rig.model.requests == []


def test_routes_are_checked_when_configured() -> None:
    assert str(parse_route("get /v1/models?limit,after_id")) == "GET /v1/models?after_id,limit"
    for bad in ("FETCH /v1/x", "GET v1/x", "GET /v1/../x", "GET /v1//x", "GET /a?b c"):
        with pytest.raises(ValueError):
            parse_route(bad)
    policy = RoutePolicy(["GET /v1/models?limit"])
    assert policy.check("GET", "/v1/models", "limit=5")[1] == "limit=5"


# -- headers and the key -----------------------------------------------------------------------


def test_headers_are_handled_as_a_proxy_should(rig: Rig) -> None:
    rig.request(
        "POST",
        "/v1/messages?beta=true",
        headers={
            "Authorization": "Bearer something-else",
            "anthropic-version": "2023-06-01",
            "anthropic-beta": "a-beta-2025",
            "Connection": "keep-alive, x-secret-hop",
            "x-secret-hop": "drop me",
            "Proxy-Authorization": "Basic abc",
            "TE": "trailers",
            "Upgrade": "h2c",
            "Cookie": "_xsrf=abc",
            "x-claude-code-session-id": "cli-session",
        },
    )
    (seen,) = rig.model.requests
    headers = {k.lower(): v for k, v in seen.headers.items()}
    assert headers["x-api-key"] == KEY and "authorization" not in headers
    assert headers["anthropic-version"] == "2023-06-01"
    assert headers["anthropic-beta"] == "a-beta-2025"
    assert headers["x-claude-code-session-id"] == "cli-session"
    for gone in ("x-secret-hop", "proxy-authorization", "te", "upgrade", "cookie"):
        assert gone not in headers, gone
    assert TOKEN not in json.dumps(headers)


def test_the_answer_never_carries_the_key(rig: Rig) -> None:
    streamed = rig.request(
        "POST",
        "/v1/messages",
        body={**BODY, "stream": True, "messages": [{"role": "user", "content": "echo the key"}]},
    )
    assert streamed.status_code == 200 and "[redacted]" in streamed.text
    whole = rig.request(
        "POST",
        "/v1/messages",
        body={**BODY, "messages": [{"role": "user", "content": "echo the key"}]},
    )
    failed = rig.request(
        "POST",
        "/v1/messages",
        body={**BODY, "messages": [{"role": "user", "content": "fail with the key"}]},
    )
    assert failed.status_code == 400
    for response in (streamed, whole, failed):
        assert KEY not in response.text
        assert KEY not in json.dumps(dict(response.headers))


@given(st.integers(min_value=1, max_value=40), st.text(min_size=0, max_size=30))
def test_the_redactor_finds_the_key_across_any_cut(cut: int, around: str) -> None:
    from agcluster_jupyter.gateway.proxy import _Redactor

    data = (around + KEY + around + KEY).encode()
    redactor = _Redactor(KEY)
    out = b"".join(redactor.feed(data[i : i + cut]) for i in range(0, len(data), cut))
    out += redactor.flush()
    assert KEY.encode() not in out
    assert out == data.replace(KEY.encode(), b"[redacted]")


# -- cost control ------------------------------------------------------------------------------


def test_models_the_server_or_the_config_does_not_allow_are_refused(
    model: ScriptedModelServer,
) -> None:
    model.reset()
    rig = Rig(model, GatewayPolicy(allowed_models=frozenset({"claude-a", "claude-b"})))
    try:
        rig.serve(allowed_models=frozenset({"claude-a", "claude-haiku-*"}))
        ok = rig.request("POST", "/v1/messages", body={**BODY, "model": "claude-a"})
        assert ok.status_code == 200
        server = rig.request("POST", "/v1/messages", body={**BODY, "model": "claude-opus-9"})
        assert server.status_code == 403 and "by this Jupyter server" in _error(server)["message"]
        mine = rig.request("POST", "/v1/messages/count_tokens", body={**BODY, "model": "claude-b"})
        assert mine.status_code == 403 and "for this session" in _error(mine)["message"]
        for bad in (b"not json", b"[1, 2]", b'{"messages": []}'):
            response = rig.request("POST", "/v1/messages", content=bad)
            assert response.status_code == 400, bad
        assert len(model.requests) == 1
        assert len(rig.refusals) == 2  # the model refusals reach the session's log
    finally:
        rig.close()


def test_the_dollar_budget_and_free_token_counting(model: ScriptedModelServer) -> None:
    model.reset()
    pricing = Pricing({"claude-test": ModelPrice(input=1_000, output=1_000)})
    rig = Rig(model, GatewayPolicy(pricing=pricing))
    try:
        session = rig.serve(cost_budget_usd=0.01)
        assert rig.request("POST", "/v1/messages/count_tokens").status_code == 200
        assert session.usage.total == 0 and session.usage.cost_usd == 0  # free
        assert rig.request("POST", "/v1/messages").status_code == 200
        tokens = session.usage.total
        assert session.usage.cost_usd == pytest.approx(tokens * 1_000 / 1_000_000)
        refused = rig.request("POST", "/v1/messages")
        assert refused.status_code == 429
        message = _error(refused)["message"]
        assert "budget of $0.01 is spent" in message and f"${session.usage.cost_usd:.4f}" in message
        assert len(model.message_requests) == 1
    finally:
        rig.close()


def test_the_body_cap_is_a_413_and_nothing_goes_upstream(model: ScriptedModelServer) -> None:
    model.reset()
    rig = Rig(model, GatewayPolicy(max_body_bytes=2_000))
    try:
        rig.serve()
        big = {**BODY, "messages": [{"role": "user", "content": "x" * 5_000}]}
        response = rig.request("POST", "/v1/messages", body=big)
        assert response.status_code == 413 and _error(response)["type"] == "request_too_large"

        def chunks() -> Iterator[bytes]:  # no Content-Length: caught while it streams
            for _ in range(10):
                yield b"x" * 500

        transport = httpx.HTTPTransport(uds=str(rig.socket))
        with httpx.Client(transport=transport, base_url="http://gateway") as client:
            chunked = client.post("/v1/messages", content=chunks(), headers={"x-api-key": TOKEN})
        assert chunked.status_code == 413
        assert model.requests == [] and len(rig.refusals) == 2
    finally:
        rig.close()


# -- the property ------------------------------------------------------------------------------

_SEGMENT = st.sampled_from(
    ["v1", "messages", "count_tokens", "files", "models", "batches", "..", ".", "", "%2e%2e",
     "%2F", "Messages", "me", "organizations", "api", "hello"]
)  # fmt: skip
_PATHS = st.lists(_SEGMENT, min_size=0, max_size=5).map(lambda parts: "/" + "/".join(parts))
_QUERIES = st.sampled_from(["", "?beta=true", "?beta", "?foo=1", "?beta=true&x=2", "?%00=1"])
_HEADERS = st.dictionaries(
    st.sampled_from(["x-api-key", "authorization", "anthropic-version", "connection",
                     "x-forwarded-for", "content-type", "transfer-encoding", "te"]),
    st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=20),
    max_size=4,
)  # fmt: skip


@pytest.fixture(scope="module")
def property_rig(model: ScriptedModelServer) -> Iterator[Rig]:
    rig = Rig(model)
    rig.serve()
    yield rig
    rig.close()


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(method=st.sampled_from(METHODS), path=_PATHS, query=_QUERIES, headers=_HEADERS)
def test_a_disallowed_route_is_never_forwarded_and_nothing_is_a_500(
    property_rig: Rig, method: str, path: str, query: str, headers: dict[str, str]
) -> None:
    rig = property_rig
    before = len(rig.model.requests)
    headers = {k: v for k, v in headers.items() if k not in ("transfer-encoding",)}
    headers.setdefault("x-api-key", TOKEN)
    try:
        response = rig.request(method, path + query, headers=headers)
    except httpx.HTTPError:
        return  # a request the client itself cannot send
    assert response.status_code < 500, response.text
    allowed = method == "POST" and path in ("/v1/messages", "/v1/messages/count_tokens")
    allowed = allowed and query in ("", "?beta=true", "?beta")
    forwarded = len(rig.model.requests) - before
    if not allowed:
        assert forwarded == 0, (method, path, query)
        assert response.status_code in (401, 403), (method, path, query, response.status_code)
    else:
        assert forwarded <= 1


def test_the_models_a_config_allows() -> None:
    from agcluster_jupyter.config import AgentConfig
    from agcluster_jupyter.sessions.manager import allowed_models

    assert allowed_models(AgentConfig(id="a"), "claude-haiku-4-5") is None  # not pinned
    pinned = AgentConfig(
        id="a",
        model="claude-opus-5",
        allowed_tools=["Task"],
        agents={
            "x": {"description": "d", "prompt": "p", "model": "sonnet"},
            "y": {"description": "d", "prompt": "p", "model": "claude-haiku-4-5"},
            "z": {"description": "d", "prompt": "p", "model": "inherit"},
        },
    )
    assert allowed_models(pinned, "claude-haiku-5") == frozenset(
        {"claude-opus-5", "claude-sonnet-*", "claude-haiku-4-5", "claude-haiku-5"}
    )
    assert allowed_models(AgentConfig(id="a", model="claude-x"), "") == frozenset({"claude-x"})
