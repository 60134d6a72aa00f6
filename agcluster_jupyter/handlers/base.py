"""The base handler: services from route kwargs, JSON bodies, and the one error mapping."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jupyter_server.base.handlers import APIHandler
from tornado import web

from ..errors import AgClusterError, BadRequest, TooLarge
from ..runner.protocol import MAX_BODY_BYTES as RUNNER_MAX_BODY_BYTES

if TYPE_CHECKING:
    from ..presets import PresetRegistry
    from ..sessions.manager import SessionManager

__all__ = ["AUTH_RESOURCE", "MAX_JSON_BODY_BYTES", "AgClusterHandler", "HandlerContext"]

#: the resource name every handler authorizes against (``@authorized``)
AUTH_RESOURCE = "agcluster"
#: the largest JSON request body (a chat message, an inline config).  A quarter of what
#: the runner accepts: re-encoded for the runner, escaping can triple a message.
MAX_JSON_BODY_BYTES = RUNNER_MAX_BODY_BYTES // 4


@dataclass(frozen=True)
class HandlerContext:
    """What the handlers need of the server, built once by ``AgClusterApp`` and given to
    each handler through its route kwargs (the handlers never see the app itself)."""

    manager: SessionManager
    presets: PresetRegistry
    agent_image: str
    demo_mode: bool
    max_upload_bytes: int
    #: bypassPermissions sessions may have kernel_access allow
    allow_unattended_kernel_access: bool = False


class AgClusterHandler(APIHandler):
    """Every agcluster handler; errors become ``{message, reason, field?}``, never a traceback."""

    auth_resource = AUTH_RESOURCE

    def initialize(self, ctx: HandlerContext) -> None:
        self.ctx = ctx
        self.manager = ctx.manager

    def check_xsrf_cookie(self) -> None:
        """Jupyter's XSRF check, for cookie requests, as is; a request with neither a
        token nor a cookie gets a 403 that says what it lacks (the check would say
        "'_xsrf' argument missing", sending people after the wrong problem)."""
        has_token = bool(self.request.headers.get("Authorization")) or bool(
            self.get_argument("token", "")
        )
        if not has_token and not self.request.headers.get("Cookie"):
            raise web.HTTPError(
                403,
                "this request carries no credentials: pass the Jupyter server's token as "
                "'Authorization: token <token>' (or use a browser session of the server)",
            )
        super().check_xsrf_cookie()

    async def prepare(self) -> None:  # type: ignore[override]  # as APIHandler's
        await super().prepare()
        # recovery runs before any request is served (also where no start hook ran)
        await self.manager.ensure_started()

    def get_json_object(self) -> dict[str, Any]:
        """The request body as a JSON object, or a 400 that says what is wrong with it."""
        if not self.request.body:
            return {}
        if len(self.request.body) > MAX_JSON_BODY_BYTES:
            raise TooLarge(
                f"the request body is {len(self.request.body)} bytes; at most "
                f"{MAX_JSON_BODY_BYTES} bytes of JSON are accepted",
                field="body",
            )
        try:
            body = json.loads(self.request.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequest(f"the request body is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise BadRequest("the request body must be a JSON object")
        try:
            # JSON may escape lone UTF-16 surrogates ("\ud800"); no UTF-8 text holds one, and
            # every later encode (to the runner, the log, a record on disk) would fail
            json.dumps(body, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise BadRequest(
                "the request body holds a lone UTF-16 surrogate escape (\\ud800-\\udfff); "
                "send valid Unicode text"
            ) from None
        return body

    def write_json(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data, default=str))

    def _handle_request_exception(self, e: BaseException) -> None:
        if isinstance(e, AgClusterError):
            if self._finished:
                return
            self.clear()
            self.set_status(e.status, reason=e.reason)
            self.set_header("Content-Type", "application/json")
            reply: dict[str, Any] = {"message": e.message, "reason": e.reason}
            if e.field:
                reply["field"] = e.field
            self.log.info("agcluster %s: %s", e.status, e.message)
            self.finish(json.dumps(reply))
            return
        super()._handle_request_exception(e)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        self.set_header("Content-Type", "application/json")
        if isinstance(exc, web.HTTPError):
            message = exc.log_message or self._reason
        else:
            # never leak internals; the log has the traceback
            message = "internal error in agcluster; the server log has the details"
        self.finish(json.dumps({"message": message, "reason": self._reason}))
