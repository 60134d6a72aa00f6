"""Health, configs, launch, sessions, chat, interrupt, events, permissions, export."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from .._version import __version__
from ..errors import BadRequest, Conflict, LimitExceeded, NotFound
from ..events import Event, format_sse, turn_reply
from ..export import EXPORT_FORMATS, to_jsonl, to_markdown, to_notebook
from ..notebooks.grants import resolve_notebook_list
from ..queryargs import flag, parse_int
from ..sessions.folders import resolve_folder
from ..sessions.session import Session
from .base import AgClusterHandler
from .sse import SSE_CONTENT_TYPE, start_sse, write_events

__all__ = ["AGENT_ROUTES"]

_ID = r"(?P<session_id>[A-Za-z0-9_-]+)"
#: the latest turns whose diffs an export carries (older ones: their summary line)
MAX_EXPORTED_DIFFS = 50


class HealthHandler(AgClusterHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        health = await self.manager.provider_health()
        body: dict[str, Any] = {
            "status": "ok" if health["provider_ok"] else "degraded",
            "version": __version__,
            "provider": self.manager.provider.name,
            "provider_ok": health["provider_ok"],
            "provider_detail": health["detail"],
            "isolated": health["isolated"],
            "agent_image": self.ctx.agent_image,
            "demo_mode": self.ctx.demo_mode,
            "server_key": bool(self.manager.server_key()),
            "sessions": len(self.manager.sessions),
        }
        pool = self.manager.pool
        if pool is not None:
            body["warm_pool"] = {
                "config_id": pool.config.id,
                "size": pool.size,
                "available": pool.available,
            }
        if not health["isolated"]:
            body["warning"] = health["detail"]
        self.write_json(body)


class ConfigsHandler(AgClusterHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        configs = [c.summary() for c in self.ctx.presets.list()]
        self.write_json({"configs": configs, "total": len(configs)})


class ConfigHandler(AgClusterHandler):
    @web.authenticated
    @authorized
    async def get(self, config_id: str) -> None:
        self.write_json(self.ctx.presets.get(config_id).model_dump(mode="json"))


def _relative_to(path: str, root: str | None) -> str:
    """``path`` as the Jupyter tree shows it (relative to ``root``) when it lies inside."""
    if root and os.path.isabs(path):
        base = os.path.realpath(os.path.expanduser(root))
        full = os.path.realpath(path)
        if full == base or full.startswith(base + os.sep):
            return os.path.relpath(full, base)
    return path


#: what a launch body may hold; anything else is a 400 naming it (a typo would otherwise
#: be dropped without a word)
LAUNCH_KEYS = (
    "config_id",
    "config",
    "api_key",
    "name",
    "notebook",
    "workspace",
    "workspace_readonly",
    "share_workspace",
    "notebooks",
    "kernel_access",
)


class LaunchHandler(AgClusterHandler):
    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = self.get_json_object()
        unknown = sorted(set(body) - set(LAUNCH_KEYS))
        if unknown:
            raise BadRequest(
                f"unknown launch field {unknown[0]!r}; a launch takes {', '.join(LAUNCH_KEYS)}",
                field=unknown[0],
            )
        config = self.ctx.presets.resolve_launch(body)
        kernel_access = body.get("kernel_access")
        if kernel_access is not None:
            if kernel_access not in ("deny", "ask", "allow"):
                raise BadRequest("kernel_access must be deny, ask or allow", field="kernel_access")
            config = config.model_copy(update={"kernel_access": kernel_access})
        if (
            config.kernel_access == "allow"
            and config.permission_mode == "bypassPermissions"
            and not self.ctx.allow_unattended_kernel_access
        ):
            raise BadRequest(
                "kernel_access allow with permission mode bypassPermissions would run the "
                "agent's code in the user's kernel with nobody asked; use kernel_access ask, "
                "or have the server set AgClusterApp.allow_unattended_kernel_access",
                field="kernel_access",
            )
        api_key = body.get("api_key")
        if api_key is not None and (not isinstance(api_key, str) or not api_key.strip()):
            raise BadRequest("api_key must be a non-empty string", field="api_key")
        name = body.get("name", "")
        if not isinstance(name, str) or len(name) > 200:
            raise BadRequest("name must be a string of at most 200 characters", field="name")
        notebook = body.get("notebook", "")
        if not isinstance(notebook, str) or len(notebook) > 4096 or "\x00" in notebook:
            raise BadRequest(
                "notebook must be the path of the notebook that starts the session",
                field="notebook",
            )
        root_dir = self.settings.get("server_root_dir")
        workspace = body.get("workspace")
        if isinstance(workspace, str) and os.path.isabs(workspace):
            # a kernel names folders by their absolute path (%%agent --here): the same
            # folder of the tree, when it is in the tree (else the 400 says so)
            inside = _relative_to(workspace, root_dir)
            if os.path.isabs(inside):
                raise BadRequest(
                    f"workspace {workspace!r} is outside the Jupyter tree; name a folder "
                    "inside it (relative to the file browser's root)",
                    field="workspace",
                )
            body["workspace"] = "" if inside == "." else inside
        folder = resolve_folder(root_dir, body)
        notebooks = resolve_notebook_list(root_dir, body.get("notebooks"))
        session = await self.manager.launch(config, api_key=api_key, name=name, folder=folder)
        if notebook or notebooks:
            # what the jupyter tools may edit besides the workspace (checked per call)
            session.record.notebook = self._tree_path(notebook) if notebook else ""
            session.record.notebooks = notebooks
            session.save()
        access = self.manager.notebook_access
        if access is not None:  # the kernels running now for its notebooks, granted
            await access.grant_kernels_at_launch(session)
        reply: dict[str, Any] = {
            "session_id": session.id,
            "agent_id": session.handle.agent_id if session.handle else None,
            "config_id": session.record.config_id,
            "status": session.state,
            "provider": self.manager.provider.name,
            "isolated": self.manager.provider.isolated,
            "workspace": session.record.workspace,
            "folder": session.record.folder,
            "workspace_readonly": session.record.workspace_readonly,
            "notebooks": session.record.notebooks,
            "kernel_access": session.record.config.kernel_access,
            "kernels": sorted(session.record.kernel_grants),
        }
        if not self.manager.provider.isolated:
            reply["warning"] = "no isolation: the local provider runs the agent on this machine"
        self.write_json(reply, status=201)

    def _tree_path(self, notebook: str) -> str:
        # a kernel knows its notebook's absolute path (JPY_SESSION_NAME)
        return _relative_to(notebook, self.settings.get("server_root_dir"))


#: how long a details or list request waits for the provider's resource figures
RESOURCES_TIMEOUT = 5.0


class _SessionsBase(AgClusterHandler):
    @property
    def contents_root(self) -> Path | None:
        root = self.settings.get("server_root_dir")
        return Path(root).expanduser() if root else None

    async def resources(self, session: Session) -> dict[str, Any]:
        """CPU and memory use of a live session; ``{}`` when unknown (best effort: the
        provider caches samples, so this rarely waits)."""
        handle = session.handle
        if handle is None or session.state not in {"ready", "busy", "idle"}:
            return {}
        try:
            return await asyncio.wait_for(
                self.manager.provider.resources(handle), RESOURCES_TIMEOUT
            )
        except Exception:
            self.log.debug("resources of %s unavailable", session.id, exc_info=True)
            return {}


class SessionsHandler(_SessionsBase):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        listed = self.manager.list_sessions()
        figures = await asyncio.gather(*(self.resources(s) for s in listed))
        root = self.contents_root
        sessions = [s.details(r, root) for s, r in zip(listed, figures, strict=True)]
        self.write_json({"sessions": sessions, "total": len(sessions)})


class SessionHandler(_SessionsBase):
    @web.authenticated
    @authorized
    async def get(self, session_id: str) -> None:
        session = self.manager.get_session(session_id)
        self.write_json(session.details(await self.resources(session), self.contents_root))

    @web.authenticated
    @authorized
    async def delete(self, session_id: str) -> None:
        purge = flag(self, "purge")
        await self.manager.stop(session_id, purge=purge)
        self.write_json({"session_id": session_id, "stopped": True, "purged": purge})


class ChatHandler(AgClusterHandler):
    @web.authenticated
    @authorized
    async def post(self, session_id: str) -> None:
        session = self.manager.get_session(session_id)
        body = self.get_json_object()
        message = body.get("message")
        if not isinstance(message, str) or not message.strip():
            raise BadRequest("message must be a non-empty string", field="message")
        before = session.log.last_seq
        spent = session.gateway_session.spent()
        if spent is not None:  # before a stopped session is started again for nothing
            raise LimitExceeded(spent)
        await self.manager.ensure_running(session)
        self.manager.note_activity(session)
        await session.start_turn(message)
        events = session.log.follow(after=before)
        if "text/event-stream" in self.request.headers.get("Accept", ""):
            start_sse(self)
            await write_events(self, events, until_done=True)
            return
        collected: list[Event] = []
        async for event in events:
            collected.append(event)
            if event.type == "done":
                break
        self.write_json(turn_reply(session.id, collected))


class InterruptHandler(AgClusterHandler):
    @web.authenticated
    @authorized
    async def post(self, session_id: str) -> None:
        session = self.manager.get_session(session_id)
        interrupted = await session.interrupt()
        self.write_json({"session_id": session_id, "interrupted": interrupted})


class EventsHandler(AgClusterHandler):
    @web.authenticated
    @authorized
    async def get(self, session_id: str) -> None:
        session = self.manager.get_session(session_id)
        after = _seq_number(self.get_query_argument("after", "0"), "after")
        header = self.request.headers.get("Last-Event-ID")
        if header:  # a reconnecting EventSource sends it with its original URL: it wins
            after = _seq_number(header, "Last-Event-ID")
        follow = flag(self, "follow", default=True)
        start_sse(self)
        if follow:
            await write_events(self, session.log.follow(after=after))
        else:
            for event in session.log.since(after):
                self.write(format_sse(event))
            self.finish(set_content_type=SSE_CONTENT_TYPE)


async def _turn_diffs(session: Session, events: list[Event]) -> dict[int, list[dict[str, Any]]]:
    """Each checkpointed turn's file diffs, for an export (the turns still kept)."""
    history = session.checkpoints
    if history is None:
        return {}
    turns = [e.turn for e in events if e.type == "checkpoint" and e.files_changed]
    out: dict[int, list[dict[str, Any]]] = {}
    for turn in turns[-MAX_EXPORTED_DIFFS:]:
        try:
            out[turn] = (await history.diff(turn, None))["files"]
        except (NotFound, Conflict):  # pruned, or a stopped remote runner: the summary stays
            continue
    return out


def _seq_number(raw: str, field: str) -> int:
    """An event seq cursor (``after``, ``Last-Event-ID``): 0 or more, else a 400."""
    return parse_int(raw, field)


class PermissionHandler(AgClusterHandler):
    @web.authenticated
    @authorized
    async def post(self, session_id: str, request_id: str) -> None:
        session = self.manager.get_session(session_id)
        body = self.get_json_object()
        decision = body.get("decision")
        if decision not in {"allow", "deny"}:
            raise BadRequest("decision must be 'allow' or 'deny'", field="decision")
        message = body.get("message", "")
        if not isinstance(message, str):
            raise BadRequest("message must be a string", field="message")
        # who answered goes into the session's log: a person, through Jupyter's auth
        user = self.current_user
        answered_by = str(getattr(user, "username", "") or getattr(user, "name", "") or user)
        await session.answer_permission(request_id, decision, message, answered_by=answered_by)
        self.write_json(
            {"request_id": request_id, "decision": decision, "answered_by": answered_by}
        )


class ExportHandler(AgClusterHandler):
    @web.authenticated
    @authorized
    async def get(self, session_id: str) -> None:
        session = self.manager.get_session(session_id)
        fmt = self.get_query_argument("format", "md")
        events = session.log.all()
        stem = f"agent-{session.id[:8]}"
        diffs = await _turn_diffs(session, events) if fmt in ("md", "ipynb") else {}
        if fmt == "jsonl":
            content_type = "application/x-ndjson; charset=utf-8"
            body = to_jsonl(events)
        elif fmt == "md":
            content_type = "text/markdown; charset=utf-8"
            body = to_markdown(events, title=session.record.name or stem, diffs=diffs)
        elif fmt == "ipynb":
            content_type = "application/x-ipynb+json"
            notebook = to_notebook(events, title=session.record.name or stem, diffs=diffs)
            # nbformat's own layout (indent 1, sorted keys), as Jupyter writes .ipynb files
            body = json.dumps(notebook, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
        else:
            formats = ", ".join(EXPORT_FORMATS)
            raise BadRequest(f"unknown export format {fmt!r}; use one of {formats}", field="format")
        self.set_header("Content-Disposition", f'attachment; filename="{stem}.{fmt}"')
        self.finish(body, set_content_type=content_type)


class NotFoundHandler(AgClusterHandler):
    """Anything else under the API root: a JSON 404 that lists where to look."""

    @web.authenticated
    @authorized
    async def get(self, path: str) -> None:
        raise NotFound(f"no agcluster endpoint {path!r}; see GET health, configs/, agents/sessions")

    post = put = delete = patch = get


AGENT_ROUTES: list[tuple[str, type[AgClusterHandler]]] = [
    (r"health/?", HealthHandler),
    (r"configs/?", ConfigsHandler),
    (r"configs/(?P<config_id>[^/]+)/?", ConfigHandler),
    (r"agents/launch/?", LaunchHandler),
    (r"agents/sessions/?", SessionsHandler),
    (rf"agents/sessions/{_ID}/?", SessionHandler),
    (rf"agents/{_ID}/chat/?", ChatHandler),
    (rf"agents/{_ID}/interrupt/?", InterruptHandler),
    (rf"agents/{_ID}/events/?", EventsHandler),
    (rf"agents/{_ID}/permissions/(?P<request_id>[A-Za-z0-9_.:-]+)/?", PermissionHandler),
    (rf"agents/{_ID}/export/?", ExportHandler),
]
