"""Open notebooks in JupyterLab pages and the agents' edits of them (``notebooks/live.py``).

Routes (relative to ``{base_url}api/agcluster/``)::

    PUT notebooks/open    {path, dirty, page}: an open notebook has (no) unsaved changes;
                          repeated while it stays unsaved (a report expires after 60 s)
    GET notebooks/edits   ?after=N&timeout=S: the jupyter tools' edits after N, waiting up
                          to S seconds (at most 30) for one: {edits: [{n, path, version,
                          session_id}], last}
    POST agents/{id}/kernels  {notebook}: the user grants the session the kernel running
                          now for that notebook (again, after a restart): {notebook,
                          kernel_id}
"""

from __future__ import annotations

import asyncio

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..errors import BadRequest, Conflict
from ..notebooks.grants import ToolError
from ..notebooks.live import DIRTY_TTL
from ..queryargs import parse_int
from ..sessions.notebook_access import NotebookAccess
from .base import AgClusterHandler

__all__ = ["NOTEBOOK_ROUTES"]

#: the longest a poll of the edits waits
MAX_POLL_SECONDS = 30


class _NotebooksHandler(AgClusterHandler):
    @property
    def access(self) -> NotebookAccess:
        access = self.manager.notebook_access
        if access is None:
            raise Conflict(
                "the notebook tools are off on this server (AgClusterApp.notebook_tools)"
            )
        return access


class OpenNotebookHandler(_NotebooksHandler):
    @web.authenticated
    @authorized
    async def put(self) -> None:
        body = self.get_json_object()
        unknown = sorted(set(body) - {"path", "dirty", "page"})
        if unknown:
            raise BadRequest(
                f"unknown field {unknown[0]!r}; a report takes path, dirty and page",
                field=unknown[0],
            )
        path, dirty, page = body.get("path"), body.get("dirty"), body.get("page", "")
        if not isinstance(path, str) or not path or len(path) > 4096 or "\x00" in path:
            raise BadRequest("path must be the notebook's path in the Jupyter tree", field="path")
        if not isinstance(dirty, bool):
            raise BadRequest("dirty must be true or false", field="dirty")
        if not isinstance(page, str) or len(page) > 200:
            raise BadRequest("page must be a string naming the page", field="page")
        self.access.tools.open_notebooks.report(path.strip("/"), page, dirty)
        self.write_json({"path": path, "dirty": dirty, "expires_in": DIRTY_TTL if dirty else 0})


class EditsHandler(_NotebooksHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        after = parse_int(self.get_query_argument("after", "0"), "after", minimum=0)
        timeout = parse_int(self.get_query_argument("timeout", "0"), "timeout", minimum=0)
        feed = self.access.feed
        items = await feed.wait(after, min(timeout, MAX_POLL_SECONDS))
        self.write_json({"edits": [item.to_json() for item in items], "last": feed.last})


class KernelGrantHandler(_NotebooksHandler):
    @web.authenticated
    @authorized
    async def post(self, session_id: str) -> None:
        session = self.manager.get_session(session_id)  # NotFound for unknown ids
        body = self.get_json_object()
        unknown = sorted(set(body) - {"notebook"})
        if unknown:
            raise BadRequest(
                f"unknown field {unknown[0]!r}; a kernel grant takes notebook", field=unknown[0]
            )
        notebook = body.get("notebook")
        if not isinstance(notebook, str) or not notebook or len(notebook) > 4096:
            raise BadRequest(
                "notebook must be a notebook's path in the Jupyter tree", field="notebook"
            )
        access = self.access
        if access.kernels is None or session.record.config.kernel_access == "deny":
            raise Conflict("this session has no access to kernels (kernel_access deny)")
        grants = await asyncio.to_thread(access.grants, session)
        try:
            granted = grants.check(notebook)
        except ToolError as exc:
            # a well-formed path the session is not granted: the session's state, not the
            # request, is what stands in the way
            raise Conflict(f"{exc}; grant the session the notebook first") from None
        kernels = await access.grant_kernels(session, [granted.api_path])
        if granted.api_path not in kernels:
            raise Conflict(
                f"{granted.api_path!r} has no running kernel: open it and start its kernel first"
            )
        self.write_json({"notebook": granted.api_path, "kernel_id": kernels[granted.api_path]})


NOTEBOOK_ROUTES: list[tuple[str, type[AgClusterHandler]]] = [
    (r"notebooks/open", OpenNotebookHandler),
    (r"notebooks/edits", EditsHandler),
    (r"agents/(?P<session_id>[A-Za-z0-9_-]+)/kernels/?", KernelGrantHandler),
]
