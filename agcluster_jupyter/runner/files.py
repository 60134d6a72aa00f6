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
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from tornado import web
from tornado.iostream import StreamClosedError

from ..errors import BadRequest, TooLarge
from ..workspace import DEFAULT_CHUNK_BYTES, LocalWorkspace, UploadWriter, disk_usage

__all__ = ["NAME_HEADER", "file_routes"]

#: the served file's own name (URL-quoted UTF-8), for the server's Content-Disposition
NAME_HEADER = "X-Agcluster-Name"
#: the largest upload the runner takes in one PUT (the server's limit is smaller)
MAX_PUT_BYTES = 8 * 1024**3

T = TypeVar("T")


async def _run(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """File work off the runner's loop (it relays the agent's events meanwhile)."""
    return await asyncio.get_running_loop().run_in_executor(
        None, functools.partial(fn, *args, **kwargs)
    )


def _int_arg(handler: web.RequestHandler, name: str, default: int) -> int:
    raw = handler.get_query_argument(name, str(default))
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a whole number", field=name) from None
    if value < 0:
        raise BadRequest(f"{name} must be 0 or more", field=name)
    return value


def _bool_arg(handler: web.RequestHandler, name: str) -> bool:
    return handler.get_query_argument(name, "0").lower() in {"1", "true", "yes", "on"}


def _disk_full(exc: OSError) -> TooLarge | None:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return TooLarge("the workspace volume is full; nothing was written", field="files")
    return None


def file_routes(
    base: type[web.RequestHandler],
    common: dict[str, Any],
    workspace: LocalWorkspace,
    state_dir: Path,
) -> list[tuple[str, type[web.RequestHandler], dict[str, Any]]]:
    """The file routes, their handlers derived from the runner's ``base`` handler (its
    bearer-token check and error format)."""

    class Tree(base):  # type: ignore[valid-type,misc]
        async def get(self) -> None:
            limit = _int_arg(self, "max_entries", 10_000)
            self.send_json(await _run(workspace.tree, max(1, limit)))

    class Preview(base):  # type: ignore[valid-type,misc]
        async def get(self) -> None:
            path = self.get_query_argument("path")
            max_bytes = _int_arg(self, "max_bytes", 1024 * 1024)
            self.send_json(await _run(workspace.preview, path, max(1, max_bytes)))

    class UploadCheck(base):  # type: ignore[valid-type,misc]
        async def get(self) -> None:
            writer = await _run(
                workspace.begin_upload,
                self.get_query_argument("target_path", ""),
                self.get_query_argument("filename"),
                overwrite=_bool_arg(self, "overwrite"),
                max_bytes=0,
            )
            relpath = writer.relpath
            await _run(writer.abort)
            self.send_json({"path": relpath})

    @web.stream_request_body
    class Raw(base):  # type: ignore[valid-type,misc]
        _writer: UploadWriter | None = None
        _error: BaseException | None = None

        async def prepare(self) -> None:
            super().prepare()
            if self.request.method != "PUT":
                return
            connection: Any = self.request.connection
            connection.set_max_body_size(MAX_PUT_BYTES)
            try:
                self._writer = await _run(
                    workspace.begin_upload,
                    self.get_query_argument("target_path", ""),
                    self.get_query_argument("filename"),
                    overwrite=_bool_arg(self, "overwrite"),
                    max_bytes=_int_arg(self, "max_bytes", MAX_PUT_BYTES),
                )
            except OSError as exc:
                raise _disk_full(exc) or exc from None

        async def data_received(self, chunk: bytes) -> None:
            if self._writer is None or self._error is not None:
                return
            try:
                await _run(self._writer.write, chunk)
            except (TooLarge, OSError) as exc:
                self._error = exc
                await _run(self._writer.abort)

        async def put(self) -> None:
            writer = self._writer
            assert writer is not None
            try:
                if self._error is not None:
                    raise self._error
                relpath = await _run(writer.commit)
            except OSError as exc:
                raise _disk_full(exc) or exc from None
            finally:
                await _run(writer.abort)
            self.send_json({"path": relpath}, 201)

        def on_finish(self) -> None:
            if self._writer is not None:
                self._writer.abort()  # a cut upload leaves no temp file

        def on_connection_close(self) -> None:
            if self._writer is not None:
                self._writer.abort()
            super().on_connection_close()

        async def get(self) -> None:
            raw = await _run(workspace.open_raw, self.get_query_argument("path"))
            try:
                self.set_header("Content-Type", raw.mime_type)
                self.set_header("Content-Length", str(raw.size_bytes))
                self.set_header(NAME_HEADER, quote(raw.name, safe=""))
                remaining = raw.size_bytes
                while remaining > 0:
                    chunk = await _run(raw.file.read, min(DEFAULT_CHUNK_BYTES, remaining))
                    if not chunk:
                        break
                    remaining -= len(chunk)
                    self.write(chunk)
                    await self.flush()
                await self.finish()
            except StreamClosedError:
                return
            finally:
                raw.close()

    class Zip(base):  # type: ignore[valid-type,misc]
        async def get(self) -> None:
            self.set_header("Content-Type", "application/zip")
            chunks: Any = workspace.iter_zip(DEFAULT_CHUNK_BYTES)  # a generator
            try:
                while (chunk := await _run(next, chunks, None)) is not None:
                    self.write(chunk)
                    await self.flush()
                await self.finish()
            except StreamClosedError:
                return
            finally:
                await _run(chunks.close)

    class Usage(base):  # type: ignore[valid-type,misc]
        async def get(self) -> None:
            paths = [workspace.root]
            if not state_dir.resolve().is_relative_to(workspace.root):
                paths.append(state_dir)  # (Fly keeps the state inside the workspace)
            used = await _run(disk_usage, paths)
            self.send_json({"bytes": used})

    return [
        (r"/files/tree", Tree, common),
        (r"/files/preview", Preview, common),
        (r"/files/upload-check", UploadCheck, common),
        (r"/files/raw", Raw, common),
        (r"/files/zip", Zip, common),
        (r"/files/usage", Usage, common),
    ]
