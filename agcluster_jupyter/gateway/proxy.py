"""The gateway: every model call of every session passes through here.

A runner presents its session token as ``x-api-key`` (or a bearer token).  The gateway
finds the session, refuses it when its token budget is spent, swaps the token for the
user's real key (kept only in this process's memory) and streams the upstream answer back
unchanged while metering the usage fields.  Errors are Anthropic-shaped with
``x-should-retry: false`` so the CLI reports them at once instead of retrying for minutes.

It is served per session on a unix socket inside the session's socket folder (``local``
and ``docker``), so a container reaches nothing but its own gateway; remote runners
(``fly``, ``kubernetes``) share one TCP listener (``serve_tcp``), where the session is the
one whose token the request carries (``register_remote``).
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

import httpx
from tornado import web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets, bind_unix_socket

from .metering import StreamMeter, Usage, usage_from_message

__all__ = ["Gateway", "GatewaySession", "hash_token"]

log = logging.getLogger(__name__)

# request headers never forwarded upstream (hop-by-hop, or ours)
_DROP_REQUEST = {
    "host",
    "x-api-key",
    "authorization",
    "content-length",
    "connection",
    "transfer-encoding",
    "accept-encoding",
    "keep-alive",
}
_DROP_RESPONSE = {"content-length", "connection", "transfer-encoding", "content-encoding"}


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class GatewaySession:
    """What the gateway knows of one session."""

    session_id: str
    token_hash: str
    #: the user's key from launch; ``None`` → the server's key
    api_key: str | None = None
    token_budget: int | None = None
    usage: Usage = field(default_factory=Usage)
    requests: int = 0
    #: called after each metered response (the session persists its usage)
    on_usage: Callable[[Usage], Awaitable[None] | None] | None = None


def _error(handler: web.RequestHandler, status: int, kind: str, message: str) -> None:
    handler.set_status(status)
    handler.set_header("Content-Type", "application/json")
    handler.set_header("x-should-retry", "false")
    handler.finish(json.dumps({"type": "error", "error": {"type": kind, "message": message}}))


class _ProxyHandler(web.RequestHandler):
    def initialize(self, gateway: Gateway, session: GatewaySession | None) -> None:
        self.gateway = gateway
        #: the session of a per-session socket; None on the shared TCP listener, where
        #: the token says which session is calling
        self.fixed = session

    def check_xsrf_cookie(self) -> None:  # a machine API, authenticated by token
        return

    def _token(self) -> str:
        token = self.request.headers.get("x-api-key", "")
        if not token:
            auth = self.request.headers.get("Authorization", "")
            token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else ""
        return token

    async def post(self, path: str) -> None:
        await self._proxy("POST", path)

    async def get(self, path: str) -> None:
        await self._proxy("GET", path)

    async def _proxy(self, method: str, path: str) -> None:
        token_hash = hash_token(self._token())
        session = self.fixed if self.fixed is not None else self.gateway.by_token(token_hash)
        if session is None or not hmac.compare_digest(token_hash, session.token_hash):
            _error(self, 401, "authentication_error", "invalid session token for this gateway")
            return
        budget = session.token_budget
        if budget is not None and session.usage.total >= budget:
            _error(
                self,
                429,
                "rate_limit_error",
                f"this session's token budget of {budget} tokens is used up "
                f"({session.usage.total} used); launch a new session or raise token_budget",
            )
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
        headers = {
            k: v for k, v in self.request.headers.get_all() if k.lower() not in _DROP_REQUEST
        }
        headers["x-api-key"] = key
        url = self.gateway.upstream.rstrip("/") + "/" + path
        if self.request.query:
            url += "?" + self.request.query
        session.requests += 1
        meter = StreamMeter()
        streamed = False
        try:
            request = self.gateway.client.build_request(
                method, url, headers=headers, content=self.request.body or None
            )
            response = await self.gateway.client.send(request, stream=True)
        except httpx.HTTPError as exc:
            log.warning("gateway: upstream %s unreachable: %s", self.gateway.upstream, exc)
            _error(self, 502, "api_error", f"the gateway could not reach the model API: {exc}")
            return
        try:
            self.set_status(response.status_code)
            for k, v in response.headers.multi_items():
                if k.lower() not in _DROP_RESPONSE:
                    self.add_header(k, v)
            is_stream = "text/event-stream" in response.headers.get("content-type", "")
            body = b""
            async for chunk in response.aiter_raw():
                if is_stream:
                    meter.feed(chunk)
                    self.write(chunk)
                    await self.flush()
                    streamed = True
                else:
                    body += chunk
            if not is_stream:
                if response.status_code == 200:
                    try:
                        meter.usage = usage_from_message(json.loads(body))
                    except ValueError:
                        pass
                self.write(body)
        except (httpx.HTTPError, OSError) as exc:
            log.warning("gateway: upstream stream broke: %s", exc)
            if not streamed and not self._finished:
                self.clear()
                _error(self, 502, "api_error", f"the model API stream broke: {exc}")
                return
        finally:
            await response.aclose()
            session.usage.add(meter.usage)
            if session.on_usage is not None and meter.usage.total:
                result = session.on_usage(session.usage)
                if result is not None:
                    await result
        if not self._finished:
            self.finish()


class Gateway:
    """Per-session gateway listeners sharing one upstream client and the server's key."""

    def __init__(self, upstream: str, server_key: Callable[[], str | None]) -> None:
        self.upstream = upstream
        self.server_key = server_key
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

    def serve_unix(self, session: GatewaySession, path: Path) -> None:
        """Listen for ``session`` on the unix socket ``path`` (replacing any old one)."""
        self.stop_serving(session.session_id)
        app = web.Application(
            [(r"/(.*)", _ProxyHandler, {"gateway": self, "session": session})],
            # runner containers run as another uid; the folder around it gates access
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        sock: socket.socket = bind_unix_socket(str(path), mode=0o666)
        server = HTTPServer(app, xheaders=False, max_body_size=64 * 1024 * 1024)
        server.add_sockets([sock])
        self._servers[session.session_id] = (server, path)
        self.sessions[session.session_id] = session

    def serve_tcp(self, host: str = "0.0.0.0", port: int = 0) -> int:
        """Open the one listener remote runners (fly, kubernetes) share; the session is
        the one whose token the request carries.  Returns the port."""
        if self._tcp is None:
            app = web.Application([(r"/(.*)", _ProxyHandler, {"gateway": self, "session": None})])
            self._tcp = HTTPServer(app, xheaders=False, max_body_size=64 * 1024 * 1024)
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
