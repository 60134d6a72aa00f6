"""The runner's workspace file API, for providers whose workspace is not on the server's
host (``fly``, ``kubernetes``): the server's file handlers call these through the runner
channel (TCP + bearer token), and the runner serves them with the same
:class:`~agcluster_jupyter.workspace.LocalWorkspace` the server uses for local folders,
so the REST contract and the path safety are one implementation.

=============================================  ==========================================
``GET  /files/tree?max_entries=N``             the tree (``LocalWorkspace.tree``)
``GET  /files/preview?path=P&max_bytes=N``     a preview (``LocalWorkspace.preview``)
``GET  /files/raw?path=P``                     the bytes; ``Content-Type`` is the file's,
                                               ``X-Agcluster-Name`` its quoted name
``GET  /files/upload-check?target_path=&``     would the upload be accepted? ``{path}``
``filename=&overwrite=``                       or the 4xx the upload would get
``PUT  /files/raw?target_path=&filename=&``    the body becomes the file, atomically;
``overwrite=&max_bytes=``                      201 ``{path}``
``GET  /files/zip``                            the workspace as a streamed ZIP
``GET  /files/usage``                          ``{bytes}``: workspace + agent state, as
                                               ``du`` counts (the storage limit)
=============================================  ==========================================

Errors are the runner's ``{message, field?}`` with the status the server would answer
(400, 404, 409, 413); a full disk is a 413.
"""

from __future__ import annotations

import asyncio
import errno
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

from tornado import web
from tornado.iostream import StreamClosedError

from ..errors import TooLarge
from ..queryargs import flag, int_arg
from ..workspace import DEFAULT_CHUNK_BYTES, AsyncUpload
from .handler import RunnerContext, RunnerHandler
from .protocol import NAME_HEADER

__all__ = ["file_routes"]

#: the largest upload the runner takes in one PUT (the server's limit is smaller)
MAX_PUT_BYTES = 8 * 1024**3

#: aborts scheduled from tornado's sync callbacks, kept until they ran
_background: set[asyncio.Future[None]] = set()


def _disk_full(exc: OSError) -> TooLarge | None:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return TooLarge("the workspace volume is full; nothing was written", field="files")
    return None


class TreeHandler(RunnerHandler):
    async def get(self) -> None:
        limit = int_arg(self, "max_entries", 10_000, minimum=1)
        self.send_json(await self.ctx.workspace.tree(limit))


class PreviewHandler(RunnerHandler):
    async def get(self) -> None:
        path = self.get_query_argument("path")
        max_bytes = int_arg(self, "max_bytes", 1024 * 1024, minimum=1)
        self.send_json(await self.ctx.workspace.preview(path, max_bytes))


class UploadCheckHandler(RunnerHandler):
    async def get(self) -> None:
        upload = await self.ctx.workspace.begin_upload(
            self.get_query_argument("target_path", ""),
            self.get_query_argument("filename"),
            overwrite=flag(self, "overwrite"),
            max_bytes=0,
        )
        await upload.abort()
        self.send_json({"path": upload.relpath})


@web.stream_request_body
class RawHandler(RunnerHandler):
    """``GET`` streams a file out; ``PUT`` streams the body into a temp file, committed
    (renamed into place) only when the whole body arrived."""

    _upload: AsyncUpload | None = None
    _error: BaseException | None = None

    async def prepare(self) -> None:
        self.check_token()
        if self.request.method != "PUT":
            return
        connection: Any = self.request.connection
        connection.set_max_body_size(MAX_PUT_BYTES)
        try:
            self._upload = await self.ctx.workspace.begin_upload(
                self.get_query_argument("target_path", ""),
                self.get_query_argument("filename"),
                overwrite=flag(self, "overwrite"),
                max_bytes=int_arg(self, "max_bytes", MAX_PUT_BYTES),
            )
        except OSError as exc:
            raise _disk_full(exc) or exc from None

    async def data_received(self, chunk: bytes) -> None:
        if self._upload is None or self._error is not None:
            return
        try:
            await self._upload.write(chunk)
        except (TooLarge, OSError) as exc:
            self._error = exc  # the rest of the body is dropped; put() answers
            await self._upload.abort()

    async def put(self) -> None:
        upload = self._upload
        assert upload is not None  # prepare() made it or raised
        try:
            if self._error is not None:
                raise self._error
            relpath = await upload.commit()
        except OSError as exc:
            raise _disk_full(exc) or exc from None
        finally:
            await upload.abort()  # a no-op once committed
        self.send_json({"path": relpath}, 201)

    def _abort_soon(self) -> None:
        if self._upload is not None:
            task = asyncio.ensure_future(self._upload.abort())
            _background.add(task)
            task.add_done_callback(_background.discard)

    def on_finish(self) -> None:
        self._abort_soon()  # a cut upload leaves no temp file

    def on_connection_close(self) -> None:
        self._abort_soon()
        super().on_connection_close()

    async def get(self) -> None:
        raw = await self.ctx.workspace.open_raw(self.get_query_argument("path"))
        try:
            self.set_header("Content-Type", raw.mime_type)
            self.set_header("Content-Length", str(raw.size_bytes))
            self.set_header(NAME_HEADER, quote(raw.name, safe=""))
            await _send_chunks(self, _raw_chunks(raw))
        finally:
            await raw.aclose()


async def _raw_chunks(raw: Any) -> AsyncIterator[bytes]:
    remaining = raw.size_bytes
    while remaining > 0:
        chunk = await raw.read(min(DEFAULT_CHUNK_BYTES, remaining))
        if not chunk:
            return
        remaining -= len(chunk)
        yield chunk


async def _send_chunks(handler: RunnerHandler, chunks: AsyncIterator[bytes]) -> None:
    """Write and flush each chunk, then finish; a client gone mid-way ends it quietly."""
    try:
        async for chunk in chunks:
            handler.write(chunk)
            await handler.flush()
        await handler.finish()
    except StreamClosedError:
        return


class ZipHandler(RunnerHandler):
    async def get(self) -> None:
        self.set_header("Content-Type", "application/zip")
        chunks = self.ctx.workspace.iter_zip(DEFAULT_CHUNK_BYTES)
        try:
            await _send_chunks(self, chunks)
        finally:
            await chunks.aclose()


class UsageHandler(RunnerHandler):
    async def get(self) -> None:
        self.send_json({"bytes": await self.ctx.workspace.usage()})


def file_routes(ctx: RunnerContext) -> list[tuple[str, type[RunnerHandler], dict[str, Any]]]:
    kwargs = {"ctx": ctx}
    return [
        (r"/files/tree", TreeHandler, kwargs),
        (r"/files/preview", PreviewHandler, kwargs),
        (r"/files/upload-check", UploadCheckHandler, kwargs),
        (r"/files/raw", RawHandler, kwargs),
        (r"/files/zip", ZipHandler, kwargs),
        (r"/files/usage", UsageHandler, kwargs),
    ]
