"""The gateway: every model call of every session passes through here.

A runner presents its session token as ``x-api-key`` (or a bearer token).  The gateway
lends the user's real key (kept only in this process's memory) to the calls the claude
CLI needs and to nothing else, least privilege, checked per request in this order:

1. the token names the session (else 401, nothing forwarded);
2. the method, path and query parameters are an allowed route (:mod:`.routes`; else an
   Anthropic-shaped 403 ``not allowed through the agcluster gateway: <method> <path>``);
3. the session's token and dollar budgets are not spent (429);
4. the body fits ``max_body_bytes`` (413), is a JSON object for the Messages routes, and
   names a model the server and the session's config allow (403).

Refusals after step 1 are the session's agent trying something: each is logged at
warning level with the session id and reaches the session's event log as an ``error``
with code ``gateway_refused`` (through ``GatewaySession.on_refused``).  What goes
upstream: the route's own path and the parsed query, the client's headers without its
``x-api-key``/``authorization``, cookies and hop-by-hop headers, plus the key.  The
answer streams back unchanged (never with the key in it) while the usage fields are
metered into tokens and dollars (:mod:`.metering`, :mod:`.pricing`); ``count_tokens`` is
free.  Errors carry ``x-should-retry: false`` so the CLI reports them at once.

It is served per session on a unix socket inside the session's socket folder (``local``
and ``docker``), so a container reaches nothing but its own gateway; remote runners
(``fly``, ``kubernetes``) share one TCP listener (``serve_tcp``), where the session is the
one whose token the request carries (``register_remote``).  Both run this one handler.

Size: the checks above, in order, and the streaming relay that meters what it forwards;
the route table (``routes.py``), metering (``metering.py``) and prices (``pricing.py``)
live apart.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from tornado import web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets, bind_unix_socket

from .metering import CallUsage, StreamMeter, Usage, usage_from_message
from .pricing import Pricing
from .routes import Refused, Route, RoutePolicy

__all__ = ["Gateway", "GatewayPolicy", "GatewaySession", "hash_token"]

log = logging.getLogger(__name__)

#: RFC 9110 §7.6.1 hop-by-hop headers, and what a proxy sets itself
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
}
# never forwarded upstream: the client's credentials (the key replaces them), cookies,
# and what httpx sets itself
_DROP_REQUEST = _HOP_BY_HOP | {
    "host",
    "x-api-key",
    "authorization",
    "cookie",
    "content-length",
    "accept-encoding",
}
_DROP_RESPONSE = _HOP_BY_HOP | {"content-length", "content-encoding", "set-cookie"}
#: the routes whose body must name a model the session may use
_MODEL_PATHS = frozenset({"/v1/messages", "/v1/messages/count_tokens"})
#: refusals of one session that reach its event log (the rest are only counted)
_REFUSALS_LOGGED = 20
#: a request body cap a server that does not set one gets (the API's own is 32 MB)
DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class GatewayPolicy:
    """The server's rules for every session (``AgClusterApp`` traits)."""

    routes: RoutePolicy = field(default_factory=RoutePolicy)
    #: models any session may call; empty: any model
    allowed_models: frozenset[str] = frozenset()
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    pricing: Pricing = field(default_factory=Pricing)


@dataclass
class GatewaySession:
    """What the gateway knows of one session."""

    session_id: str
    token_hash: str
    #: the user's key from launch; ``None`` → the server's key
    api_key: str | None = None
    token_budget: int | None = None
    cost_budget_usd: float | None = None
    #: models this session may call (its config's pinned model and the CLI's small
    #: model); None: whatever the server allows
    allowed_models: frozenset[str] | None = None
    usage: Usage = field(default_factory=Usage)
    requests: int = 0
    refusals: int = 0
    #: called after each metered response (the session persists its usage)
    on_usage: Callable[[Usage], Awaitable[None] | None] | None = None
    #: called with the message of each refused request (the session logs it)
    on_refused: Callable[[str], None] | None = None

    def spent(self) -> str | None:
        """Why the session may make no more model calls, or None."""
        budget = self.token_budget
        if budget is not None and self.usage.total >= budget:
            return (
                f"this session's token budget of {budget} tokens is used up "
                f"({self.usage.total} used); launch a new session or raise token_budget"
            )
        dollars = self.cost_budget_usd
        if dollars is not None and self.usage.cost_usd >= dollars:
            return (
                f"this session's budget of ${dollars:.2f} is spent "
                f"(${self.usage.cost_usd:.4f} used); launch a new session or raise "
                "cost_budget_usd"
            )
        return None


def _allowed(model: str, allowed: frozenset[str]) -> bool:
    """``model`` is in ``allowed``, whose entries ending in ``*`` are prefixes."""
    return model in allowed or any(a.endswith("*") and model.startswith(a[:-1]) for a in allowed)


class _Rejected(Exception):
    def __init__(self, status: int, kind: str, message: str, refused: bool = True) -> None:
        super().__init__(message)
        self.status, self.kind, self.refused = status, kind, refused


def _error(handler: web.RequestHandler, status: int, kind: str, message: str) -> None:
    handler.clear()
    handler.set_status(status)
    handler.set_header("Content-Type", "application/json")
    handler.set_header("x-should-retry", "false")
    handler.finish(json.dumps({"type": "error", "error": {"type": kind, "message": message}}))


class _Redactor:
    """Takes the key out of a response body as it streams, even across chunks."""

    def __init__(self, key: str) -> None:
        self.key = key.encode()
        self._held = b""

    def feed(self, chunk: bytes) -> bytes:
        data = (self._held + chunk).replace(self.key, b"[redacted]")
        self._held = b""
        # hold back the longest tail that could be the start of the key (rare: a few
        # compares a chunk, only where the key's first byte occurs)
        start = data.find(self.key[:1], max(0, len(data) - len(self.key) + 1))
        while start >= 0:
            if self.key.startswith(data[start:]):
                data, self._held = data[:start], data[start:]
                break
            start = data.find(self.key[:1], start + 1)
        return data

    def flush(self) -> bytes:
        held, self._held = self._held, b""
        return held


@web.stream_request_body
class _ProxyHandler(web.RequestHandler):
    def initialize(self, gateway: Gateway, session: GatewaySession | None) -> None:
        self.gateway = gateway
        #: the session of a per-session socket; None on the shared TCP listener, where
        #: the token says which session is calling
        self.fixed = session
        self.session: GatewaySession | None = None
        self.route: Route | None = None
        self.query = ""
        self._body: list[bytes] = []
        self._size = 0
        self._pending: _Rejected | None = None

    def check_xsrf_cookie(self) -> None:  # a machine API, authenticated by token
        return

    def _token(self) -> str:
        token = self.request.headers.get("x-api-key", "")
        if not token:
            auth = self.request.headers.get("Authorization", "")
            token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else ""
        return token

    def _reject(self, error: _Rejected) -> None:
        session = self.session
        if session is not None and error.refused:
            self.gateway.refused(session, str(error))
        _error(self, error.status, error.kind, str(error))

    # -- before the body: who, what, how much -----------------------------------------------

    def prepare(self) -> None:
        try:
            self._admit()
        except _Rejected as error:
            if error.status == 413 or self.request.method in ("GET", "HEAD", "OPTIONS"):
                self._reject(error)
            else:
                # answered once the body is in (discarded): a client still sending it
                # would otherwise see the connection drop instead of the answer
                self._pending = error

    def _admit(self) -> None:
        token_hash = hash_token(self._token())
        session = self.fixed if self.fixed is not None else self.gateway.by_token(token_hash)
        if session is None or not hmac.compare_digest(token_hash, session.token_hash):
            raise _Rejected(
                401, "authentication_error", "invalid session token for this gateway", False
            )
        self.session = session
        policy = self.gateway.policy
        try:
            self.route, self.query = policy.routes.check(
                self.request.method or "", self.request.path, self.request.query
            )
        except Refused as refused:
            raise _Rejected(403, "permission_error", str(refused)) from None
        spent = session.spent() if self.route.metered else None
        if spent is not None:
            raise _Rejected(429, "rate_limit_error", spent, refused=False)
        length = self.request.headers.get("Content-Length")
        if length is not None and length.isdigit() and int(length) > policy.max_body_bytes:
            raise _Rejected(413, "request_too_large", self._too_large())

    def _too_large(self) -> str:
        cap = self.gateway.policy.max_body_bytes
        return f"request body over the agcluster gateway's limit of {cap} bytes"

    def data_received(self, chunk: bytes) -> None:
        if self._finished:
            return
        self._size += len(chunk)
        if self._size > self.gateway.policy.max_body_bytes:
            self._body = []
            self._reject(_Rejected(413, "request_too_large", self._too_large()))
            return
        if self._pending is None:
            self._body.append(chunk)

    # -- every method is one forward (prepare refused what no route allows) ----------------

    async def get(self, path: str) -> None:
        await self._forward()

    async def head(self, path: str) -> None:
        await self._forward()

    async def post(self, path: str) -> None:
        await self._forward()

    async def put(self, path: str) -> None:
        await self._forward()

    async def patch(self, path: str) -> None:
        await self._forward()

    async def delete(self, path: str) -> None:
        await self._forward()

    async def options(self, path: str) -> None:
        await self._forward()

    def _model(self, body: bytes) -> str:
        """The model the body names, checked against the server's and session's lists."""
        assert self.route is not None and self.session is not None
        try:
            data: Any = json.loads(body) if body else None
        except ValueError:
            data = None
        needs_model = self.route.path in _MODEL_PATHS
        if not isinstance(data, dict):
            if needs_model:
                raise _Rejected(
                    400,
                    "invalid_request_error",
                    "the body must be a JSON object with a model",
                    refused=False,  # malformed, not a call the policy refuses
                )
            return ""
        model = data.get("model")
        if not isinstance(model, str) or not model:
            if needs_model:
                raise _Rejected(
                    400, "invalid_request_error", "the body names no model", refused=False
                )
            return ""
        server = self.gateway.policy.allowed_models
        if server and model not in server:
            raise _Rejected(
                403,
                "permission_error",
                f"model {model!r} is not allowed by this Jupyter server "
                f"(allowed: {', '.join(sorted(server))})",
            )
        mine = self.session.allowed_models
        if mine is not None and not _allowed(model, mine):
            raise _Rejected(
                403,
                "permission_error",
                f"model {model!r} is not allowed for this session "
                f"(its config allows {', '.join(sorted(mine))})",
            )
        return model

    async def _forward(self) -> None:
        if self._finished:
            return
        if self._pending is not None:
            self._reject(self._pending)
            return
        session, route = self.session, self.route
        assert session is not None and route is not None
        body = b"".join(self._body)
        try:
            model = self._model(body)
        except _Rejected as error:
            self._reject(error)
            return
        key = session.api_key or self.gateway.server_key()
        if not key:
            _error(
                self,
                401,
                "authentication_error",
                "no Anthropic API key: set ANTHROPIC_API_KEY for the Jupyter server or "
                "pass api_key when launching (a key given at launch is not kept across a "
                "server restart)",
            )
            return
        connection = {
            h.strip().lower() for h in self.request.headers.get("Connection", "").split(",")
        }
        headers = {
            k: v
            for k, v in self.request.headers.get_all()
            if k.lower() not in _DROP_REQUEST and k.lower() not in connection
        }
        headers["x-api-key"] = key
        headers["accept-encoding"] = "identity"  # the body streams back as it comes
        url = self.gateway.upstream.rstrip("/") + route.path
        if self.query:
            url += "?" + self.query
        session.requests += 1
        await self._exchange(session, route, model, url, headers, body, key)

    async def _exchange(
        self,
        session: GatewaySession,
        route: Route,
        model: str,
        url: str,
        headers: dict[str, str],
        body: bytes,
        key: str,
    ) -> None:
        meter = StreamMeter()
        call = CallUsage()
        streamed = False
        redactor = _Redactor(key)
        client = self.gateway.client
        try:
            request = client.build_request(
                self.request.method or "POST", url, headers=headers, content=body or None
            )
            response = await client.send(request, stream=True)
        except httpx.HTTPError as exc:
            log.warning("gateway: upstream %s unreachable: %s", self.gateway.upstream, exc)
            _error(self, 502, "api_error", f"the gateway could not reach the model API: {exc}")
            return
        try:
            self.set_status(response.status_code)
            for k, v in response.headers.multi_items():
                if k.lower() not in _DROP_RESPONSE and key not in v:
                    self.add_header(k, v)
            is_stream = "text/event-stream" in response.headers.get("content-type", "")
            whole = b""
            async for chunk in response.aiter_raw():
                if is_stream:
                    meter.feed(chunk)
                    self.write(redactor.feed(chunk))
                    await self.flush()
                    streamed = True
                else:
                    whole += chunk
            if is_stream:
                self.write(redactor.flush())
                call = meter.call
            else:
                if response.status_code == 200:
                    try:
                        call = usage_from_message(json.loads(whole))
                    except ValueError:
                        pass
                self.write(whole.replace(key.encode(), b"[redacted]"))
        except (httpx.HTTPError, OSError) as exc:
            log.warning("gateway: upstream stream broke: %s", exc)
            if not streamed and not self._finished:
                _error(self, 502, "api_error", f"the model API stream broke: {exc}")
                return
        finally:
            await response.aclose()
            if route.metered:
                used = call.usage(model, self.gateway.policy.pricing)
                session.usage.add(used)
                if session.on_usage is not None and (used.total or used.cost_usd):
                    result = session.on_usage(session.usage)
                    if result is not None:
                        await result
        if not self._finished:
            self.finish()


class Gateway:
    """Per-session gateway listeners sharing one upstream client and the server's key."""

    def __init__(
        self,
        upstream: str,
        server_key: Callable[[], str | None],
        policy: GatewayPolicy | None = None,
    ) -> None:
        self.upstream = upstream
        self.server_key = server_key
        self.policy = policy or GatewayPolicy()
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(connect=15.0, read=600.0, write=60.0, pool=30.0),
            # the CLI's own retry logic decides; connection reuse keeps latency low
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
        )
        self._servers: dict[str, tuple[HTTPServer, Path]] = {}
        self.sessions: dict[str, GatewaySession] = {}
        #: sessions reachable on the shared TCP listener, by token hash
        self._remote: dict[str, GatewaySession] = {}
        self._tcp: HTTPServer | None = None
        self.tcp_port: int | None = None

    def _http_server(self, session: GatewaySession | None) -> HTTPServer:
        app = web.Application([(r"/(.*)", _ProxyHandler, {"gateway": self, "session": session})])
        # the body is streamed to the handler, which answers 413 over the policy's cap;
        # tornado's own cap (a dropped connection) only backs it up
        return HTTPServer(
            app, xheaders=False, max_body_size=self.policy.max_body_bytes + 1024 * 1024
        )

    def refused(self, session: GatewaySession, message: str) -> None:
        """A request of ``session``'s refused by the policy: warn and tell the session."""
        session.refusals += 1
        if session.refusals > _REFUSALS_LOGGED:
            return  # counted; the first ones told the story
        log.warning("gateway: session %s: refused: %s", session.session_id, message)
        note = message
        if session.refusals == _REFUSALS_LOGGED:
            note += " (further refusals of this session are counted, not logged)"
        if session.on_refused is not None:
            session.on_refused(note)

    def serve_unix(self, session: GatewaySession, path: Path) -> None:
        """Listen for ``session`` on the unix socket ``path`` (replacing any old one)."""
        self.stop_serving(session.session_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        # runner containers run as another uid; the folder around it gates access
        sock: socket.socket = bind_unix_socket(str(path), mode=0o666)
        server = self._http_server(session)
        server.add_sockets([sock])
        self._servers[session.session_id] = (server, path)
        self.sessions[session.session_id] = session

    def serve_tcp(self, host: str = "0.0.0.0", port: int = 0) -> int:
        """Open the one listener remote runners (fly, kubernetes) share; the session is
        the one whose token the request carries.  Returns the port."""
        if self._tcp is None:
            self._tcp = self._http_server(None)
            sockets = bind_sockets(port, host)
            self._tcp.add_sockets(sockets)
            self.tcp_port = int(sockets[0].getsockname()[1])
        assert self.tcp_port is not None
        return self.tcp_port

    def register_remote(self, session: GatewaySession) -> None:
        """Accept ``session``'s token on the TCP listener (replacing an older entry)."""
        self.stop_serving(session.session_id)
        self.sessions[session.session_id] = session
        self._remote[session.token_hash] = session

    def by_token(self, token_hash: str) -> GatewaySession | None:
        return self._remote.get(token_hash)

    def stop_serving(self, session_id: str) -> None:
        gone = self.sessions.get(session_id)
        if gone is not None:
            self._remote.pop(gone.token_hash, None)
        entry = self._servers.pop(session_id, None)
        self.sessions.pop(session_id, None)
        if entry is None:
            return
        server, path = entry
        server.stop()
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass

    async def close(self) -> None:
        for session_id in list(self.sessions):
            self.stop_serving(session_id)
        if self._tcp is not None:
            self._tcp.stop()
            self._tcp = None
        await self.client.aclose()
