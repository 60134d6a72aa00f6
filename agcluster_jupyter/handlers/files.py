"""Workspace files: tree, preview, raw bytes, whole-workspace ZIP, multipart upload.

Routes (relative to ``{base_url}api/agcluster/``)::

    GET       files/{id}                      tree
    GET, POST files/{id}/download             the workspace as a streamed ZIP
    POST      files/{id}/upload               multipart, parts named ``files``
    GET       files/{id}/{path}               preview; ``?raw=1`` bytes, ``&download=1`` attachment

Every workspace call is awaited through the one ``Workspace`` interface
(``workspace/protocol.py``): a local folder's blocking calls run in the executor.  Reads
(tree, preview, raw, ZIP) do not count as session activity, so the idle reaper is not
fooled by a panel polling the tree; an upload does.  Uploads are streamed
(``@web.stream_request_body``): the multipart body is parsed as it arrives
(``multipart.py``) and each file goes to a temp file in its target folder, so memory stays
flat and an over-limit file is refused the moment it crosses the limit.
"""

from __future__ import annotations

import asyncio
import errno
import re
from email.message import Message
from typing import Any
from urllib.parse import quote

from jupyter_server.auth.decorator import authorized
from tornado import web
from tornado.iostream import StreamClosedError

from ..errors import AgClusterError, BadRequest, Conflict, TooLarge
from ..queryargs import flag
from ..sessions.session import Session
from ..workspace import DEFAULT_CHUNK_BYTES, check_filename, split_path
from ..workspace.protocol import Workspace, WorkspaceUpload
from .base import AgClusterHandler
from .multipart import MAX_PART_HEADER_BYTES, MultipartParser, PartData, PartEnd, PartStart

__all__ = ["FILE_ROUTES", "MAX_FILES_PER_UPLOAD", "content_disposition"]

_ID = r"(?P<session_id>[A-Za-z0-9_-]+)"
#: most ``files`` parts one upload request may carry
MAX_FILES_PER_UPLOAD = 100

#: fire-and-forget cleanups, referenced so they are not garbage-collected mid-way
_background: set[asyncio.Future[Any]] = set()


def content_disposition(kind: str, filename: str) -> str:
    """``attachment; filename="..."`` with an ASCII fallback and RFC 6266 ``filename*``."""
    fallback = re.sub(r"[^A-Za-z0-9._-]", "_", filename).strip(".") or "download"
    header = f'{kind}; filename="{fallback}"'
    if fallback != filename:
        encoded = quote(filename.encode("utf-8", "replace"), safe="")
        header += f"; filename*=UTF-8''{encoded}"
    return header


# ---------------------------------------------------------------------------- handlers


class _FilesHandler(AgClusterHandler):
    def _workspace(self, session_id: str) -> tuple[Session, Workspace]:
        session = self.manager.get_session(session_id)  # NotFound for unknown ids
        return session, session.workspace

    def _sandbox(self) -> None:
        # workspace bytes are the agent's (or the web's): served HTML/SVG must not run
        # script with the Jupyter origin, so the response gets an opaque, script-less origin
        self.set_header("Content-Security-Policy", f"{self.content_security_policy}; sandbox")
        self.set_header("Cache-Control", "no-store")


class TreeHandler(_FilesHandler):
    @web.authenticated
    @authorized
    async def get(self, session_id: str) -> None:
        _, workspace = self._workspace(session_id)
        self.write_json(await workspace.tree())


class FileHandler(_FilesHandler):
    @web.authenticated
    @authorized
    async def get(self, session_id: str, path: str) -> None:
        download = flag(self, "download")
        raw = flag(self, "raw") or download
        _, workspace = self._workspace(session_id)
        if not raw:
            self.write_json(await workspace.preview(path))
            return
        rawfile = await workspace.open_raw(path)
        try:
            self._sandbox()
            self.set_header("Content-Type", rawfile.mime_type)
            self.set_header("Content-Length", str(rawfile.size_bytes))
            kind = "attachment" if download else "inline"
            self.set_header("Content-Disposition", content_disposition(kind, rawfile.name))
            remaining = rawfile.size_bytes
            while remaining > 0:
                chunk = await rawfile.read(min(DEFAULT_CHUNK_BYTES, remaining))
                if not chunk:
                    break  # shrank while we sent it: finish() reports the short body
                remaining -= len(chunk)
                self.write(chunk)
                await self.flush()
        except StreamClosedError:
            return  # the client went away
        finally:
            await rawfile.aclose()
        self.finish(set_content_type=rawfile.mime_type)


class DownloadHandler(_FilesHandler):
    @web.authenticated
    @authorized
    async def get(self, session_id: str) -> None:
        await self._send_zip(session_id)

    @web.authenticated
    @authorized
    async def post(self, session_id: str) -> None:
        await self._send_zip(session_id)

    async def _send_zip(self, session_id: str) -> None:
        _, workspace = self._workspace(session_id)
        self._sandbox()
        self.set_header("Content-Type", "application/zip")
        self.set_header(
            "Content-Disposition",
            content_disposition("attachment", f"{session_id}-workspace.zip"),
        )
        # nothing is flushed before the first chunk: a workspace that cannot be read is
        # still a clean 4xx
        chunks = workspace.iter_zip(DEFAULT_CHUNK_BYTES)
        try:
            async for chunk in chunks:
                self.write(chunk)
                await self.flush()  # one chunk in memory at a time
        except StreamClosedError:
            return
        finally:
            await chunks.aclose()
        self.finish(set_content_type="application/zip")


#: an upload refused before its body is read is answered after reading (and dropping) a
#: body this small; a larger one gets the answer with its connection closed
DRAIN_BYTES = 1 << 20


@web.stream_request_body
class UploadHandler(_FilesHandler):
    """``POST files/{id}/upload?target_path=&overwrite=false`` with parts named ``files``.

    All or nothing per request: files stay in temp files until the whole body has
    arrived, then each is renamed into place.  Over the limit → 413 and nothing is left.
    """

    _parser: MultipartParser | None = None
    _error: BaseException | None = None
    #: an upload refused before its body was read, answered once the body is in
    _refused: web.HTTPError | AgClusterError | None = None

    async def prepare(self) -> None:  # type: ignore[override]  # as APIHandler's
        self._writers: list[WorkspaceUpload] = []
        self._names: set[str] = set()
        self._current: WorkspaceUpload | None = None
        try:
            await self._prepare_upload()
        except (web.HTTPError, AgClusterError) as exc:
            # Answering now would close the connection with the body unread, and the
            # client would see its connection reset instead of the answer (tornado's
            # only way to skip a body).  A small body is read and dropped first.
            length = self.request.headers.get("Content-Length", "")
            if not (length.isdigit() and int(length) <= DRAIN_BYTES):
                raise
            self._refused = exc
            self._parser = None

    async def _prepare_upload(self) -> None:
        await super().prepare()  # Jupyter authentication, XSRF and origin checks
        if self._finished:
            return
        # the body is read after prepare(): authorize before a single byte is written
        pending = self._authorize_upload()
        if pending is not None:
            await pending
        limit = int(self.ctx.max_upload_bytes)
        self._limit = limit
        # tornado's own cap would answer a bare 400; ours is sized for the per-file limit
        body_cap = MAX_FILES_PER_UPLOAD * (limit + MAX_PART_HEADER_BYTES)
        connection: Any = self.request.connection  # HTTP1Connection
        connection.set_max_body_size(body_cap)
        length = self.request.headers.get("Content-Length")
        if length and length.isdigit() and int(length) > body_cap:
            raise TooLarge(
                f"the upload is larger than {MAX_FILES_PER_UPLOAD} files of the "
                f"{limit}-byte limit each",
                field="files",
            )
        ctype = Message()
        ctype["content-type"] = self.request.headers.get("Content-Type", "")
        boundary = ctype.get_boundary()
        if ctype.get_content_type() != "multipart/form-data" or not boundary:
            raise BadRequest(
                "send the files as multipart/form-data, one part named 'files' per file",
                field="files",
            )
        self._target = self.get_query_argument("target_path", "")
        split_path(self._target, "target_path")  # a bad target fails before the body
        self._overwrite = flag(self, "overwrite")
        self._session, self._ws = self._workspace(self.path_kwargs["session_id"])
        # resource_limits.storage: 413 before a byte is written (the body's size stands
        # in for its files'; a chunked body is checked against what is used already)
        size = int(length) if length and length.isdigit() else 0
        await self.manager.check_storage(self._session, size, what="this upload")
        self._parser = MultipartParser(boundary)

    @web.authenticated
    @authorized
    async def _authorize_upload(self) -> None:
        """The same checks as every handler method, run early (see ``prepare``)."""

    async def data_received(self, chunk: bytes) -> None:
        if self._parser is None or self._error is not None:
            return  # after an error the rest of the body is read and dropped
        try:
            for event in self._parser.feed(chunk):
                await self._on_event(event)
        except (AgClusterError, OSError) as exc:
            self._error = exc
            await self._abort_all()

    async def _on_event(self, event: PartStart | PartData | PartEnd) -> None:
        if isinstance(event, PartStart):
            if event.name != "files":
                self._current = None  # other form fields are ignored
                return
            if event.filename is None:
                raise BadRequest("a part named 'files' has no filename", field="files")
            filename = check_filename(event.filename)
            if filename in self._names:
                raise Conflict(f"{filename!r} appears twice in this upload", field="files")
            if len(self._writers) >= MAX_FILES_PER_UPLOAD:
                raise TooLarge(
                    f"one upload may carry at most {MAX_FILES_PER_UPLOAD} files", field="files"
                )
            self._names.add(filename)
            writer = await self._ws.begin_upload(
                self._target, filename, overwrite=self._overwrite, max_bytes=self._limit
            )
            self._writers.append(writer)
            self._current = writer
        elif isinstance(event, PartData):
            if self._current is not None:
                await self._current.write(event.data)
        else:
            self._current = None

    async def _abort_all(self) -> None:
        writers, self._writers = self._writers, []
        for writer in writers:
            await writer.abort()

    @web.authenticated
    @authorized
    async def post(self, session_id: str) -> None:
        if self._refused is not None:
            raise self._refused
        try:
            error = self._error
            if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
                raise TooLarge("the workspace disk is full; nothing was written", field="files")
            if error is not None:
                raise error
            assert self._parser is not None
            self._parser.close()
            if not self._writers:
                raise BadRequest(
                    "no files in the upload: send one or more multipart parts named 'files'",
                    field="files",
                )
            uploaded = []
            for writer in self._writers:
                path = await writer.commit()
                uploaded.append({"filename": path.rsplit("/", 1)[-1], "path": path})
        finally:
            await self._abort_all()  # no-op for committed files; removes any leftovers
        self.manager.note_activity(self._session)  # a write is activity; reads are not
        self.write_json({"uploaded": uploaded})

    def _abort_soon(self) -> None:
        if getattr(self, "_writers", None):
            task = asyncio.ensure_future(self._abort_all())
            _background.add(task)
            task.add_done_callback(_background.discard)

    def on_connection_close(self) -> None:
        self._abort_soon()  # the client went away mid-upload: drop the temp files
        super().on_connection_close()

    def on_finish(self) -> None:
        self._abort_soon()  # whatever ended the request, no temp file outlives it
        super().on_finish()


FILE_ROUTES: list[tuple[str, type[AgClusterHandler]]] = [
    # download and upload first: a root-level file named so is reachable through the tree
    # only (the contract fixes these sub-paths)
    (rf"files/{_ID}/download", DownloadHandler),
    (rf"files/{_ID}/upload", UploadHandler),
    (rf"files/{_ID}/?", TreeHandler),
    (rf"files/{_ID}/(?P<path>.+)", FileHandler),
]
