"""The runner's checkpoint API, for providers whose workspace lives on the session's
volume (``kubernetes``, ``fly``): the server's :class:`~agcluster_jupyter.checkpoints.
remote.RemoteCheckpoints` calls these, and the runner answers with the same
:class:`~agcluster_jupyter.checkpoints.CheckpointHistory` the server runs for docker and
local sessions.  The store is ``--checkpoint-dir``, outside the workspace.

==========================================  =============================================
``POST /checkpoints/{n}/begin {prompt}``    checkpoint ``n``: the workspace before turn n
``POST /checkpoints/{n}/end {anchor}``      ``{summary, total}``: what turn n changed
``GET  /checkpoints``                       the listing
``GET  /checkpoints/{n}/diff?path=``        turn n's changes
``POST /checkpoints/{n}/restore {paths}``   ``{restored}``
``GET  /checkpoints/undo``                  what an undo would reverse (409: nothing)
``POST /checkpoints/undo``                  ``{restored}``
``GET  /checkpoints/{n}/rewind-point``      ``{point}``: where the conversation resumes
``POST /checkpoints/{n}/rewind-files``      ``{restored}``; body ``{conversation}``
``GET  /checkpoints/export?turn=``          a snapshot stream (``transfer.py``): before
                                            turn n, or the workspace now
``PUT  /checkpoints/seed``                  a snapshot stream into the (empty) workspace:
                                            a fork's files; ``{files}``
``POST /conversation/export``               ``{conversation, at?}``: a copy of the
                                            transcript up to message ``at``; its bytes,
                                            its id in ``X-Agcluster-Conversation``
``PUT  /conversation/import?id=``           a transcript for this session's CLI to resume
==========================================  =============================================

Errors are the runner's ``{message, field?}`` with their status (400, 404, 409, 413).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from typing import Any

from tornado import web

from ..checkpoints import CheckpointHistory
from ..checkpoints.async_local import seed_workspace
from ..checkpoints.conversation import (
    CONVERSATION_ID,
    find_transcript,
    fork_transcript,
    transcript_target,
)
from ..checkpoints.transfer import write_objects
from ..errors import BadRequest, Conflict, NotFound, TooLarge
from ..queryargs import parse_int
from .handler import RunnerContext, RunnerHandler
from .protocol import CONVERSATION_HEADER

__all__ = ["checkpoint_routes"]

#: the largest snapshot stream a seed takes (the workspace volume bounds it anyway)
MAX_SEED_BYTES = 64 * 1024**3
MAX_TRANSCRIPT_BYTES = 512 * 1024**2
_CHUNK = 1024 * 1024


class _Handler(RunnerHandler):
    def history(self) -> CheckpointHistory:
        if self.ctx.checkpoints is None:
            raise Conflict("this runner keeps no checkpoints (started without --checkpoint-dir)")
        return self.ctx.checkpoints

    def turn(self, value: str) -> int:
        return parse_int(value, "turn", minimum=1)


class BeginHandler(_Handler):
    async def post(self, turn: str) -> None:
        history, number = self.history(), self.turn(turn)
        prompt = self.json_body().get("prompt", "")
        if not isinstance(prompt, str):
            raise BadRequest("prompt must be a string", field="prompt")
        await asyncio.to_thread(history.begin_turn, number, prompt)
        self.send_json({"total": history.count()})


class EndHandler(_Handler):
    async def post(self, turn: str) -> None:
        history, number = self.history(), self.turn(turn)
        anchor = self.json_body().get("anchor")
        if anchor is not None and not (
            isinstance(anchor, dict) and all(isinstance(v, str) for v in anchor.values())
        ):
            raise BadRequest("anchor must be an object of strings, or null", field="anchor")
        summary = await asyncio.to_thread(history.end_turn, number, anchor)
        self.send_json({"summary": summary, "total": history.count()})


class ListHandler(_Handler):
    async def get(self) -> None:
        self.send_json(await asyncio.to_thread(self.history().listing))


class DiffHandler(_Handler):
    async def get(self, turn: str) -> None:
        history, number = self.history(), self.turn(turn)
        path = self.get_query_argument("path", None)
        self.send_json(await asyncio.to_thread(history.diff, number, path))


class RestoreHandler(_Handler):
    async def post(self, turn: str) -> None:
        history, number = self.history(), self.turn(turn)
        paths = self.json_body().get("paths")
        if paths is not None and not (
            isinstance(paths, list) and all(isinstance(p, str) for p in paths)
        ):
            raise BadRequest("paths must be a list of workspace paths", field="paths")
        restored = await asyncio.to_thread(history.restore, number, paths)
        self.send_json({"restored": restored})


class UndoHandler(_Handler):
    async def get(self) -> None:
        self.send_json(await asyncio.to_thread(self.history().peek_undo))

    async def post(self) -> None:
        self.send_json({"restored": await asyncio.to_thread(self.history().undo)})


class RewindPointHandler(_Handler):
    async def get(self, turn: str) -> None:
        history, number = self.history(), self.turn(turn)
        self.send_json({"point": await asyncio.to_thread(history.rewind_point, number)})


class RewindFilesHandler(_Handler):
    async def post(self, turn: str) -> None:
        history, number = self.history(), self.turn(turn)
        conversation = self.json_body().get("conversation")
        if conversation is not None and not isinstance(conversation, str):
            raise BadRequest("conversation must be a string or null", field="conversation")
        restored = await asyncio.to_thread(history.rewind_files, number, conversation)
        self.send_json({"restored": restored})


class ExportHandler(_Handler):
    async def get(self) -> None:
        history = self.history()
        raw = self.get_query_argument("turn", None)
        turn = None if raw is None else self.turn(raw)
        with tempfile.TemporaryFile() as spool:

            def build() -> None:
                tree, _ = history.fork_point(turn, None)
                write_objects(history.store, tree, spool)
                spool.seek(0)

            await asyncio.to_thread(build)
            self.set_header("Content-Type", "application/x-tar")
            while chunk := await asyncio.to_thread(spool.read, _CHUNK):
                self.write(chunk)
                await self.flush()
        await self.finish()


@web.stream_request_body
class SeedHandler(_Handler):
    """The body is spooled to a temp file, then read into the store and written into the
    workspace: a cut stream writes nothing."""

    _spool: Any = None
    _size = 0

    async def prepare(self) -> None:
        self.check_token()
        connection: Any = self.request.connection
        connection.set_max_body_size(MAX_SEED_BYTES)
        self._spool = tempfile.TemporaryFile()

    async def data_received(self, chunk: bytes) -> None:
        self._size += len(chunk)
        await asyncio.to_thread(self._spool.write, chunk)

    async def put(self) -> None:
        history = self.history()
        if any(os.scandir(history.workspace)):
            raise Conflict("the workspace is not empty; a fork's files go into a new session")
        self._spool.seek(0)
        try:
            files = await asyncio.to_thread(seed_workspace, history, self._spool)
        except OSError as exc:
            raise TooLarge(f"the fork's files did not fit on the volume: {exc}") from None
        self.send_json({"files": files}, 201)

    def on_finish(self) -> None:
        if self._spool is not None:
            self._spool.close()


class ConversationExportHandler(_Handler):
    async def post(self) -> None:
        body = self.json_body()
        conversation, at = body.get("conversation"), body.get("at")
        if not isinstance(conversation, str) or not CONVERSATION_ID.match(conversation):
            raise BadRequest("conversation must be a conversation id", field="conversation")
        if at is not None and not isinstance(at, str):
            raise BadRequest("at must be a message id or null", field="at")
        config_dir = self.runner.settings.state_dir / "claude"

        def copy() -> tuple[str, bytes]:
            forked = fork_transcript(config_dir, conversation, at or None)
            path = find_transcript(config_dir, forked)
            try:
                return forked, path.read_bytes()
            finally:
                path.unlink()  # the copy goes to the fork; this session keeps its own

        try:
            forked, data = await asyncio.to_thread(copy)
        except (ValueError, FileNotFoundError) as exc:
            raise NotFound(f"the conversation cannot be copied: {exc}") from None
        self.set_header("Content-Type", "application/x-ndjson")
        self.set_header(CONVERSATION_HEADER, forked)
        self.finish(data)


@web.stream_request_body
class ConversationImportHandler(_Handler):
    _chunks: list[bytes]
    _size = 0

    async def prepare(self) -> None:
        self.check_token()
        connection: Any = self.request.connection
        connection.set_max_body_size(MAX_TRANSCRIPT_BYTES)
        self._chunks = []

    def data_received(self, chunk: bytes) -> None:
        self._chunks.append(chunk)

    async def put(self) -> None:
        conversation = self.get_query_argument("id", "")
        settings = self.runner.settings
        try:
            target = transcript_target(
                settings.state_dir / "claude", str(settings.workspace), conversation
            )
        except ValueError:
            raise BadRequest("id must be a conversation id", field="id") from None
        data = b"".join(self._chunks)

        def write() -> None:
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = target.with_suffix(".tmp")
            tmp.write_bytes(data)
            user = settings.agent_user
            if user is not None:  # the CLI reads and appends to it as the agent user
                for path in (target.parent, tmp):
                    os.chown(path, user.uid, user.gid)
            os.replace(tmp, target)

        await asyncio.to_thread(write)
        self.send_json({"conversation": conversation}, 201)


def checkpoint_routes(ctx: RunnerContext) -> list[tuple[str, type[RunnerHandler], dict[str, Any]]]:
    kwargs = {"ctx": ctx}
    turn = r"/checkpoints/([^/]+)"
    return [
        (r"/checkpoints", ListHandler, kwargs),
        (r"/checkpoints/undo", UndoHandler, kwargs),
        (r"/checkpoints/export", ExportHandler, kwargs),
        (r"/checkpoints/seed", SeedHandler, kwargs),
        (rf"{turn}/begin", BeginHandler, kwargs),
        (rf"{turn}/end", EndHandler, kwargs),
        (rf"{turn}/diff", DiffHandler, kwargs),
        (rf"{turn}/restore", RestoreHandler, kwargs),
        (rf"{turn}/rewind-point", RewindPointHandler, kwargs),
        (rf"{turn}/rewind-files", RewindFilesHandler, kwargs),
        (r"/conversation/export", ConversationExportHandler, kwargs),
        (r"/conversation/import", ConversationImportHandler, kwargs),
    ]
