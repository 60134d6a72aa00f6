"""The runner channel's base handler: the bearer-token check, JSON bodies and replies, and
the ``{message, field?}`` error format every runner endpoint shares.

Every handler gets one :class:`RunnerContext` through its route kwargs (the shared
services, built once by ``make_app``), so no handler needs its own ``initialize``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from tornado import web

from ..checkpoints import CheckpointHistory
from ..errors import AgClusterError, BadRequest
from ..workspace import AsyncLocalWorkspace
from .agent import AgentRunner
from .protocol import HEARTBEAT_SECONDS, MAX_BODY_BYTES, token_matches

__all__ = ["RunnerContext", "RunnerHandler"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunnerContext:
    """What the runner's handlers share."""

    runner: AgentRunner
    #: the SHA-256 of the control token (the runner never holds the token itself)
    digest: str
    workspace: AsyncLocalWorkspace
    on_shutdown: Callable[[], None]
    heartbeat: float = HEARTBEAT_SECONDS
    #: the workspace's checkpoints (``--checkpoint-dir``); None: the server keeps them
    checkpoints: CheckpointHistory | None = None


class RunnerHandler(web.RequestHandler):
    ctx: RunnerContext

    def initialize(self, ctx: RunnerContext) -> None:
        self.ctx = ctx

    @property
    def runner(self) -> AgentRunner:
        return self.ctx.runner

    def prepare(self) -> Awaitable[None] | None:
        self.check_token()
        return None

    def check_token(self) -> None:
        if not token_matches(self.request.headers.get("Authorization", ""), self.ctx.digest):
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
