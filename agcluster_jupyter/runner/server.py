"""The runner channel's HTTP handlers (tornado), exactly as ``runner/protocol.py`` says.

Errors are ``{"message": ...}`` with a 4xx status (never a 500 for anything a caller can
send).  Every request needs ``Authorization: Bearer <control token>``: the runner holds
only the token's SHA-256 and compares digests in constant time; a refused request is
logged and reported to the session (``AgentRunner.refused``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from tornado import web
from tornado.iostream import StreamClosedError

from ..errors import AgClusterError, BadRequest
from ..workspace import LocalWorkspace
from .agent import AgentRunner
from .files import file_routes
from .protocol import HEARTBEAT_SECONDS, MAX_BODY_BYTES, token_matches

__all__ = ["MAX_BODY_BYTES", "make_app"]

log = logging.getLogger(__name__)

#: ``/turns`` and ``/permissions`` bodies are tiny; refuse anything silly early


class _Handler(web.RequestHandler):
    runner: AgentRunner

    def initialize(self, runner: AgentRunner, digest: str) -> None:
        self.runner = runner
        self._digest = digest

    def prepare(self) -> None:
        if not token_matches(self.request.headers.get("Authorization", ""), self._digest):
            self.runner.refused(self.request.method or "", self.request.path)
            self.set_header("WWW-Authenticate", "Bearer")
            raise web.HTTPError(401, "a valid bearer token is required")

    def json_body(self) -> dict[str, Any]:
        if len(self.request.body) > MAX_BODY_BYTES:
            raise BadRequest("the request body is too large")
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            raise BadRequest("the request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise BadRequest("the request body must be a JSON object")
        return body

    def send_json(self, data: dict[str, Any], status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        body: dict[str, Any] = {"message": self._reason}
        if isinstance(exc, AgClusterError) and exc.status < 500:
            # the runner's own errors carry their status (tornado set 500 for them)
            self.set_status(exc.status)
            body = {"message": exc.message, **({"field": exc.field} if exc.field else {})}
        elif isinstance(exc, web.HTTPError) and exc.log_message:
            body["message"] = exc.log_message % exc.args if exc.args else exc.log_message
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, AgClusterError) and value.status < 500:
            log.info("%s %s: %s", self.request.method, self.request.path, value.message)
            return
        super().log_exception(typ, value, tb)


class NotFoundHandler(_Handler):
    def prepare(self) -> None:
        super().prepare()
        raise web.HTTPError(404, "no such endpoint; see agcluster_jupyter.runner.protocol")


class HealthHandler(_Handler):
    def get(self) -> None:
        self.send_json(self.runner.health())


class TurnsHandler(_Handler):
    def post(self) -> None:
        body = self.json_body()
        turn = self.runner.start_turn(body.get("message"))
        self.send_json({"turn": turn}, 202)


class InterruptHandler(_Handler):
    async def post(self) -> None:
        self.send_json({"interrupted": await self.runner.interrupt()})


class PermissionHandler(_Handler):
    def post(self, request_id: str) -> None:
        body = self.json_body()
        self.runner.resolve_permission(request_id, body.get("decision"), body.get("message"))
        self.send_json({"request_id": request_id, "decision": body["decision"]})


class ShutdownHandler(_Handler):
    def initialize(  # type: ignore[override]
        self, runner: AgentRunner, digest: str, on_shutdown: Callable[[], None]
    ) -> None:
        super().initialize(runner, digest)
        self._on_shutdown = on_shutdown

    async def post(self) -> None:
        self.set_header("Content-Type", "application/json")
        await self.finish(json.dumps({"stopping": True}))  # sent before we stop
        self._on_shutdown()


class EventsHandler(_Handler):
    """NDJSON of the buffer from ``after`` on, held open, heartbeats when idle."""

    def initialize(  # type: ignore[override]
        self, runner: AgentRunner, digest: str, heartbeat: float
    ) -> None:
        super().initialize(runner, digest)
        self.heartbeat = heartbeat

    async def get(self) -> None:
        raw = self.get_query_argument("after", "0")
        try:
            after = int(raw)
        except ValueError:
            raise BadRequest("after must be a whole number", field="after") from None
        if after < 0:
            raise BadRequest("after must be 0 or more", field="after")
        buffer = self.runner.buffer
        self.set_header("Content-Type", "application/x-ndjson")
        self.set_header("Cache-Control", "no-cache")
        cursor = after
        with buffer.subscribed():
            try:
                if after > buffer.last_rseq:
                    # a cursor this runner never reached: restart from what it still has
                    cursor = buffer.first_rseq - 1
                    self.write(b'{"rseq":%d,"reset":true}\n' % cursor)
                self.write(b"\n")  # flush the headers now: the caller knows it is subscribed
                await self.flush()
                while True:
                    lines, cursor = buffer.read(cursor)
                    if lines:
                        self.write(b"".join(lines))
                        await self.flush()
                    elif buffer.closed:
                        break
                    elif not await buffer.wait(cursor, self.heartbeat):
                        self.write(b"\n")
                        await self.flush()
                # the runner is stopping: it waits for this before closing connections
                await self.finish()
            except StreamClosedError:
                return


def make_app(
    runner: AgentRunner,
    *,
    digest: str,
    on_shutdown: Callable[[], None],
    heartbeat: float = HEARTBEAT_SECONDS,
) -> web.Application:
    common: dict[str, Any] = {"runner": runner, "digest": digest}
    root = runner.settings.workspace
    workspace = LocalWorkspace(root, aliases=("/workspace",), display_root=str(root))
    return web.Application(
        [
            *file_routes(_Handler, common, workspace, runner.settings.state_dir),
            (r"/health", HealthHandler, common),
            (r"/turns", TurnsHandler, common),
            (r"/events", EventsHandler, {**common, "heartbeat": heartbeat}),
            (r"/interrupt", InterruptHandler, common),
            (r"/permissions/([^/]+)", PermissionHandler, common),
            (r"/shutdown", ShutdownHandler, {**common, "on_shutdown": on_shutdown}),
        ],
        default_handler_class=NotFoundHandler,
        default_handler_args=common,
        log_function=_log_request,
    )


def _log_request(handler: web.RequestHandler) -> None:
    status = handler.get_status()
    level = logging.WARNING if status >= 400 else logging.DEBUG
    log.log(
        level,
        "%d %s %s %.1fms",
        status,
        handler.request.method,
        handler.request.path,
        1000 * handler.request.request_time(),
    )
