"""A session workspace that lives with its runner (``fly``, ``kubernetes``), not on the
server's host: every file operation goes through the runner's file API
(:mod:`agcluster_jupyter.runner.files`) over the runner channel.

The runner serves it with the same ``LocalWorkspace`` the server uses for local folders,
so the REST contract and the path rules are the same.  Uploads are spooled on the server
until the whole multipart body has arrived (an upload is all or nothing, as locally) and
then streamed to the runner, which writes each file to a temp file and renames it into
place.  A runner that is not running answers nothing: that is a 409 saying how to start
it again (the files stay on the session's volume).
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import IO, Any
from urllib.parse import unquote

import httpx

from ..errors import AgClusterError, BadRequest, Conflict, NotFound, ServiceUnavailable, TooLarge
from ..runner.protocol import NAME_HEADER
from .local import DEFAULT_CHUNK_BYTES, DEFAULT_PREVIEW_BYTES, DEFAULT_TREE_ENTRIES

__all__ = [
    "RemoteRawFile",
    "RemoteUpload",
    "RemoteWorkspace",
    "raise_for_runner",
    "runner_not_running",
]

#: uploads stay in memory up to this size, then spill to the server's temp folder
SPOOL_BYTES = 1024 * 1024

_ERRORS: dict[int, type[AgClusterError]] = {
    400: BadRequest,
    404: NotFound,
    409: Conflict,
    413: TooLarge,
}

#: the runner channel of the session, with the given timeout (s)
ChannelFactory = Callable[[float], httpx.AsyncClient]


def runner_not_running(detail: str) -> Conflict:
    return Conflict(
        "the session's agent is not running, and its workspace lives with it on the "
        "provider's volume (kept); send the session a message to start it again "
        f"({detail})"
    )


async def raise_for_runner(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    await response.aread()
    try:
        body = response.json()
        message, field = str(body.get("message", "")), str(body.get("field", "") or "")
    except (ValueError, AttributeError):
        message, field = response.text[:200], ""
    kind = _ERRORS.get(response.status_code)
    if kind is not None:
        raise kind(message or response.reason_phrase, field=field)
    raise ServiceUnavailable(
        f"the session's runner answered {response.status_code} to a file request: {message}"
    )


class RemoteRawFile:
    """An open remote file: ``await file.read(n)`` chunks, then ``aclose()``."""

    def __init__(
        self, client: httpx.AsyncClient, response: httpx.Response, *, size: int, name: str
    ) -> None:
        self._client = client
        self._response = response
        self._chunks = response.aiter_bytes(DEFAULT_CHUNK_BYTES)
        self._pending = b""
        self.size_bytes = size
        self.mime_type = response.headers.get("Content-Type", "application/octet-stream")
        self.name = name

    async def read(self, n: int) -> bytes:
        while len(self._pending) < n:
            try:
                self._pending += await self._chunks.__anext__()
            except StopAsyncIteration:
                break
        chunk, self._pending = self._pending[:n], self._pending[n:]
        return chunk

    async def aclose(self) -> None:
        await self._response.aclose()
        await self._client.aclose()


class RemoteUpload:
    """One uploaded file, spooled here until ``commit`` streams it to the runner."""

    def __init__(
        self,
        workspace: RemoteWorkspace,
        target_dir: str,
        filename: str,
        relpath: str,
        *,
        overwrite: bool,
        max_bytes: int,
    ) -> None:
        self._workspace = workspace
        self._target_dir = target_dir
        self._filename = filename
        self.relpath = relpath
        self._overwrite = overwrite
        self._max_bytes = max_bytes
        self._size = 0
        self._spool: IO[bytes] | None = tempfile.SpooledTemporaryFile(SPOOL_BYTES)

    async def write(self, data: bytes) -> None:
        if self._spool is None:
            raise RuntimeError("upload already finished")
        if self._size + len(data) > self._max_bytes:
            self._drop()
            raise TooLarge(
                f"file {self._filename!r} is larger than the upload limit of "
                f"{self._max_bytes} bytes; nothing was written",
                field="files",
            )
        # the spool moves to disk past SPOOL_BYTES: written off the event loop
        await asyncio.to_thread(self._spool.write, data)
        self._size += len(data)

    async def commit(self) -> str:
        spool = self._spool
        if spool is None:
            raise RuntimeError("upload already finished")
        spool.seek(0)

        async def body() -> AsyncIterator[bytes]:
            # the spool may be on disk: read it off the event loop
            while chunk := await asyncio.to_thread(spool.read, DEFAULT_CHUNK_BYTES):
                yield chunk

        try:
            async with self._workspace.channel(timeout=300.0) as client:
                response = await client.put(
                    "/files/raw",
                    params={
                        "target_path": self._target_dir,
                        "filename": self._filename,
                        "overwrite": "1" if self._overwrite else "0",
                        "max_bytes": str(self._max_bytes),
                    },
                    content=body(),
                    headers={"Content-Length": str(self._size)},
                )
                await raise_for_runner(response)
                return str(response.json()["path"])
        except httpx.HTTPError as exc:
            raise runner_not_running(f"{type(exc).__name__}: {exc}") from None
        finally:
            self._drop()

    async def abort(self) -> None:
        self._drop()

    def _drop(self) -> None:
        if self._spool is not None:
            self._spool.close()
            self._spool = None


class RemoteWorkspace:
    """A runner-backed workspace: ``LocalWorkspace``'s file operations (tree, preview,
    open_raw, iter_zip, begin_upload) with the same arguments and results, async."""

    def __init__(self, channel: ChannelFactory, *, describe: str = "") -> None:
        self.channel_factory = channel
        self.describe = describe

    def __repr__(self) -> str:
        return f"RemoteWorkspace({self.describe!r})"

    def channel(self, timeout: float = 30.0) -> httpx.AsyncClient:
        return self.channel_factory(timeout)

    async def _get_json(self, path: str, params: dict[str, str]) -> Any:
        try:
            async with self.channel() as client:
                response = await client.get(path, params=params)
                await raise_for_runner(response)
                return response.json()
        except httpx.HTTPError as exc:
            raise runner_not_running(f"{type(exc).__name__}: {exc}") from None

    async def tree(self, max_entries: int = DEFAULT_TREE_ENTRIES) -> dict[str, Any]:
        result: dict[str, Any] = await self._get_json(
            "/files/tree", {"max_entries": str(max_entries)}
        )
        return result

    async def preview(self, relpath: str, max_bytes: int = DEFAULT_PREVIEW_BYTES) -> dict[str, Any]:
        result: dict[str, Any] = await self._get_json(
            "/files/preview", {"path": relpath, "max_bytes": str(max_bytes)}
        )
        return result

    async def usage(self) -> int:
        """Bytes the workspace and the agent state use on the runner's volume."""
        return int((await self._get_json("/files/usage", {}))["bytes"])

    async def _open_stream(
        self, path: str, params: dict[str, str]
    ) -> tuple[httpx.AsyncClient, httpx.Response]:
        """A streamed GET, its status checked before anything is sent on (a stopped
        runner is still a clean 409, not a cut download); the caller closes both."""
        client = self.channel(timeout=300.0)
        try:
            request = client.build_request("GET", path, params=params)
            response = await client.send(request, stream=True)
            await raise_for_runner(response)
        except httpx.HTTPError as exc:
            await client.aclose()
            raise runner_not_running(f"{type(exc).__name__}: {exc}") from None
        except BaseException:
            await client.aclose()
            raise
        return client, response

    async def open_raw(self, relpath: str) -> RemoteRawFile:
        client, response = await self._open_stream("/files/raw", {"path": relpath})
        name = unquote(response.headers.get(NAME_HEADER, "")) or relpath.rsplit("/", 1)[-1]
        size = int(response.headers.get("Content-Length", "0"))
        return RemoteRawFile(client, response, size=size, name=name)

    async def iter_zip(self, chunk_size: int = DEFAULT_CHUNK_BYTES) -> AsyncGenerator[bytes, None]:
        client, response = await self._open_stream("/files/zip", {})
        try:
            async for chunk in response.aiter_bytes(chunk_size):
                yield chunk
        finally:
            await response.aclose()
            await client.aclose()

    async def begin_upload(
        self, target_dir: str, filename: str, *, overwrite: bool, max_bytes: int
    ) -> RemoteUpload:
        """Check with the runner that the file may be written (409 early, as locally)."""
        checked = await self._get_json(
            "/files/upload-check",
            {
                "target_path": target_dir,
                "filename": filename,
                "overwrite": "1" if overwrite else "0",
            },
        )
        return RemoteUpload(
            self,
            target_dir,
            filename,
            str(checked["path"]),
            overwrite=overwrite,
            max_bytes=max_bytes,
        )
