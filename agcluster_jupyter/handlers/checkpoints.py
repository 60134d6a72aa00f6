"""A session's checkpoints: list, one turn's diff, restore, undo.

Routes (relative to ``{base_url}api/agcluster/``)::

    GET  agents/{id}/checkpoints                    what each turn changed
    GET  agents/{id}/checkpoints/{turn}/diff        ?path= one file or folder
    POST agents/{id}/checkpoints/{turn}/restore     {paths?: [...]}; 409 while a turn runs
    POST agents/{id}/undo                           the last restore or rewind, reversed
    POST agents/{id}/rewind                         {turn}: files and conversation as before it
    POST agents/{id}/fork                           {turn?, name?}: a new session from here
    GET  agents/{id}/compare/{other_id}             this workspace against the other's

The work runs where the checkpoints are kept (``checkpoints/protocol.py``): in a worker
thread here for docker and local, on the runner for kubernetes and fly.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..checkpoints.compare import compare
from ..checkpoints.protocol import Checkpoints
from ..errors import BadRequest, Conflict
from ..events import RewindEvent
from ..queryargs import parse_int
from ..sessions.session import Session
from .base import AgClusterHandler

__all__ = ["CHECKPOINT_ROUTES"]

_ID = r"(?P<session_id>[A-Za-z0-9_-]+)"
_TURN = r"(?P<turn>[^/]+)"
#: paths one restore may name
MAX_RESTORE_PATHS = 1000


class _CheckpointsHandler(AgClusterHandler):
    def _history(self, session_id: str) -> tuple[Session, Checkpoints]:
        session = self.manager.get_session(session_id)  # NotFound for unknown ids
        if session.checkpoints is None:
            raise Conflict(
                "checkpoints are off on this server (AgClusterApp.checkpoint_max_bytes = 0)"
            )
        return session, session.checkpoints

    @contextlib.asynccontextmanager
    async def _restoring(self, session: Session) -> AsyncIterator[None]:
        """No turn runs, none starts, and the session is not stopped meanwhile."""
        async with session.lock:
            if session.state in {"busy", "starting", "stopping"} or session.sending:
                raise Conflict(
                    f"the session is {'busy' if session.sending else session.state}: "
                    "wait for its turn's done event (or interrupt it), then restore"
                )
            if session.restoring:
                raise Conflict("a restore of this session is running; wait for it")
            session.restoring = True
            try:
                yield
            finally:
                session.restoring = False

    async def _revert_notebooks(
        self, session: Session, history: Checkpoints, turn: int
    ) -> list[str]:
        """After a whole restore or rewind: the notebooks outside the workspace the agent
        edited since ``turn``, as they were (undone with it: the undo record is the tag)."""
        access = self.manager.notebook_access
        if access is None:
            return []
        return await access.revert(session, turn, await history.peek_undo())


class CheckpointsHandler(_CheckpointsHandler):
    @web.authenticated
    @authorized
    async def get(self, session_id: str) -> None:
        _, history = self._history(session_id)
        self.write_json(await history.listing())


class DiffHandler(_CheckpointsHandler):
    @web.authenticated
    @authorized
    async def get(self, session_id: str, turn: str) -> None:
        _, history = self._history(session_id)
        number = parse_int(turn, "turn", minimum=1)
        path = self.get_query_argument("path", None)
        self.write_json(await history.diff(number, path))


class RestoreHandler(_CheckpointsHandler):
    @web.authenticated
    @authorized
    async def post(self, session_id: str, turn: str) -> None:
        session, history = self._history(session_id)
        number = parse_int(turn, "turn", minimum=1)
        paths = _paths(self.get_json_object())
        async with self._restoring(session):
            restored = await history.restore(number, paths)
            # the notebooks outside the workspace come back with a whole restore only
            notebooks = await self._revert_notebooks(session, history, number) if not paths else []
        self.manager.note_activity(session)
        self.write_json({"turn": number, "restored": restored, "notebooks": notebooks})


class UndoHandler(_CheckpointsHandler):
    @web.authenticated
    @authorized
    async def post(self, session_id: str) -> None:
        session, history = self._history(session_id)
        last = await history.peek_undo()  # 409 when there is nothing
        if last["kind"] == "rewind":
            await self.manager.ensure_running(session)
        async with self._restoring(session):
            if last["kind"] == "rewind":  # the conversation first: it may refuse
                await session.rewind_conversation(last.get("conversation"), None)
            restored = await history.undo()
            access = self.manager.notebook_access
            notebooks = await access.undo(session, last) if access is not None else []
        self.manager.note_activity(session)
        self.write_json({"restored": restored, "undid": last["kind"], "notebooks": notebooks})


class RewindHandler(_CheckpointsHandler):
    @web.authenticated
    @authorized
    async def post(self, session_id: str) -> None:
        session, history = self._history(session_id)
        body = self.get_json_object()
        unknown = sorted(set(body) - {"turn"})
        if unknown:
            raise BadRequest(f"unknown field {unknown[0]!r}; a rewind takes turn", field=unknown[0])
        turn = _turn_field(body.get("turn"))
        if turn is None:
            raise BadRequest("turn must be a turn number (1 or more)", field="turn")
        point = await history.rewind_point(turn)  # 404 for no such turn
        await self.manager.ensure_running(session)
        async with self._restoring(session):
            before = session.record.sdk_session_id
            # the conversation first: if the CLI refuses, no file has changed
            if point is None:
                await session.rewind_conversation(None, None)
            else:
                await session.rewind_conversation(point["conversation"], point.get("message"))
            restored = await history.rewind_files(turn, before)
            notebooks = await self._revert_notebooks(session, history, turn)
            session.log.append(RewindEvent(turn=turn))
        self.manager.note_activity(session)
        self.write_json({"turn": turn, "restored": restored, "notebooks": notebooks})


def _turn_field(value: Any) -> int | None:
    """A body's ``turn``: a turn number (JSON's 2.0 is 2), None when absent, else a 400."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON has one number type
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BadRequest("turn must be a turn number (1 or more)", field="turn")
    return value


def _paths(body: dict[str, Any]) -> list[str] | None:
    unknown = sorted(set(body) - {"paths"})
    if unknown:
        raise BadRequest(
            f"unknown field {unknown[0]!r}; a restore takes only paths", field=unknown[0]
        )
    paths = body.get("paths")
    if paths is None:
        return None
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise BadRequest("paths must be a list of workspace paths", field="paths")
    if not paths:
        raise BadRequest(
            "paths is empty; leave it out to restore the whole workspace", field="paths"
        )
    if len(paths) > MAX_RESTORE_PATHS:
        raise BadRequest(f"at most {MAX_RESTORE_PATHS} paths per restore", field="paths")
    return paths


class ForkHandler(_CheckpointsHandler):
    @web.authenticated
    @authorized
    async def post(self, session_id: str) -> None:
        parent, _ = self._history(session_id)
        body = self.get_json_object()
        unknown = sorted(set(body) - {"turn", "name"})
        if unknown:
            raise BadRequest(
                f"unknown field {unknown[0]!r}; a fork takes turn and name", field=unknown[0]
            )
        turn = _turn_field(body.get("turn"))
        name = body.get("name", "")
        if not isinstance(name, str) or len(name) > 200:
            raise BadRequest("name must be a string of at most 200 characters", field="name")
        child = await self.manager.fork(parent, turn=turn, name=name)
        self.write_json(
            {
                "session_id": child.id,
                "agent_id": child.handle.agent_id if child.handle else None,
                "config_id": child.record.config_id,
                "status": child.state,
                "provider": self.manager.provider.name,
                "isolated": self.manager.provider.isolated,
                "workspace": child.record.workspace,
                "forked_from": child.record.forked_from,
            },
            status=201,
        )


class CompareHandler(_CheckpointsHandler):
    @web.authenticated
    @authorized
    async def get(self, session_id: str, other_id: str) -> None:
        _, mine = self._history(session_id)
        _, theirs = self._history(other_id)
        if mine is theirs:
            raise BadRequest("compare a session with another one", field="other_id")
        reply = await compare(mine, theirs)
        self.write_json({"session_id": session_id, "other_id": other_id, **reply})


CHECKPOINT_ROUTES: list[tuple[str, type[AgClusterHandler]]] = [
    (rf"agents/{_ID}/checkpoints/?", CheckpointsHandler),
    (rf"agents/{_ID}/checkpoints/{_TURN}/diff/?", DiffHandler),
    (rf"agents/{_ID}/checkpoints/{_TURN}/restore/?", RestoreHandler),
    (rf"agents/{_ID}/undo/?", UndoHandler),
    (rf"agents/{_ID}/rewind/?", RewindHandler),
    (rf"agents/{_ID}/fork/?", ForkHandler),
    (rf"agents/{_ID}/compare/(?P<other_id>[A-Za-z0-9_-]+)/?", CompareHandler),
]
