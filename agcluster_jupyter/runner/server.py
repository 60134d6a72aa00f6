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

from tornado import web
from tornado.iostream import StreamClosedError

from ..checkpoints import CheckpointHistory
from ..errors import BadRequest
from ..queryargs import int_arg
from ..workspace import AsyncLocalWorkspace, LocalWorkspace
from .agent import AgentRunner
from .checkpoints import checkpoint_routes
from .files import file_routes
from .handler import RunnerContext, RunnerHandler
from .protocol import HEARTBEAT_SECONDS, MAX_BODY_BYTES

__all__ = ["MAX_BODY_BYTES", "make_app"]

log = logging.getLogger(__name__)


class NotFoundHandler(RunnerHandler):
    def prepare(self) -> None:
        self.check_token()
        raise web.HTTPError(404, "no such endpoint; see agcluster_jupyter.runner.protocol")


class HealthHandler(RunnerHandler):
    def get(self) -> None:
        self.send_json(self.runner.health())


class TurnsHandler(RunnerHandler):
    def post(self) -> None:
        body = self.json_body()
        turn = self.runner.start_turn(body.get("message"))
        self.send_json({"turn": turn}, 202)


class InterruptHandler(RunnerHandler):
    async def post(self) -> None:
        self.send_json({"interrupted": await self.runner.interrupt()})


class PermissionHandler(RunnerHandler):
    def post(self, request_id: str) -> None:
        body = self.json_body()
        self.runner.resolve_permission(request_id, body.get("decision"), body.get("message"))
        self.send_json({"request_id": request_id, "decision": body["decision"]})


class ToolCallHandler(RunnerHandler):
    def post(self, call_id: str) -> None:
        self.runner.tools.resolve(call_id, self.json_body())
        self.send_json({"call_id": call_id})


class RewindHandler(RunnerHandler):
    async def post(self) -> None:
        body = self.json_body()
        resume, at = body.get("resume"), body.get("at")
        for name, value in (("resume", resume), ("at", at)):
            if value is not None and (not isinstance(value, str) or not value):
                raise BadRequest(
                    f"{name} must be a conversation or message id, or null", field=name
                )
        self.send_json({"sdk_session_id": await self.runner.rewind(resume, at)})


class ShutdownHandler(RunnerHandler):
    async def post(self) -> None:
        self.set_header("Content-Type", "application/json")
        await self.finish(json.dumps({"stopping": True}))  # sent before we stop
        self.ctx.on_shutdown()


class EventsHandler(RunnerHandler):
    """NDJSON of the buffer from ``after`` on, held open, heartbeats when idle."""

    async def get(self) -> None:
        after = int_arg(self, "after", 0)
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
                    elif not await buffer.wait(cursor, self.ctx.heartbeat):
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
    checkpoints: CheckpointHistory | None = None,
) -> web.Application:
    root = runner.settings.workspace
    state_dir = runner.settings.state_dir.resolve()
    local = LocalWorkspace(root, aliases=("/workspace",), display_root=str(root))
    # the storage limit counts the agent's state too, unless it is inside the workspace
    # already (Fly keeps it there)
    extra = () if state_dir.is_relative_to(local.root) else (state_dir,)
    ctx = RunnerContext(
        runner=runner,
        digest=digest,
        workspace=AsyncLocalWorkspace(local, usage_paths=extra),
        on_shutdown=on_shutdown,
        heartbeat=heartbeat,
        checkpoints=checkpoints,
    )
    common = {"ctx": ctx}
    return web.Application(
        [
            *file_routes(ctx),
            *checkpoint_routes(ctx),
            (r"/health", HealthHandler, common),
            (r"/turns", TurnsHandler, common),
            (r"/events", EventsHandler, common),
            (r"/interrupt", InterruptHandler, common),
            (r"/permissions/([^/]+)", PermissionHandler, common),
            (r"/tool-calls/([^/]+)", ToolCallHandler, common),
            (r"/rewind", RewindHandler, common),
            (r"/shutdown", ShutdownHandler, common),
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
