"""``LocalWorkspace`` behind the async ``Workspace`` interface: every blocking call runs in
the executor, so the event loop never waits on the disk."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

from .local import (
    DEFAULT_CHUNK_BYTES,
    DEFAULT_PREVIEW_BYTES,
    DEFAULT_TREE_ENTRIES,
    LocalWorkspace,
    RawFile,
    disk_usage,
)
from .upload import UploadWriter

__all__ = ["AsyncLocalWorkspace", "AsyncRawFile", "AsyncUpload"]


class AsyncRawFile:
    def __init__(self, raw: RawFile) -> None:
        self._raw = raw
        self.size_bytes = raw.size_bytes
        self.mime_type = raw.mime_type
        self.name = raw.name

    async def read(self, n: int) -> bytes:
        return await asyncio.to_thread(self._raw.file.read, n)

    async def aclose(self) -> None:
        await asyncio.to_thread(self._raw.close)


class AsyncUpload:
    def __init__(self, writer: UploadWriter) -> None:
        self._writer = writer
        self.relpath = writer.relpath

    async def write(self, data: bytes) -> None:
        await asyncio.to_thread(self._writer.write, data)

    async def commit(self) -> str:
        return await asyncio.to_thread(self._writer.commit)

    async def abort(self) -> None:
        await asyncio.to_thread(self._writer.abort)


class AsyncLocalWorkspace:
    """A workspace folder on this host (``LocalWorkspace``'s rules), awaited."""

    def __init__(self, local: LocalWorkspace, *, usage_paths: tuple[Path, ...] = ()) -> None:
        self.local = local
        #: what counts against the storage limit besides the workspace (the agent state)
        self._usage_paths = (local.root, *usage_paths)

    def __repr__(self) -> str:
        return f"AsyncLocalWorkspace({str(self.local.root)!r})"

    @property
    def root(self) -> Path:
        return self.local.root

    async def tree(self, max_entries: int = DEFAULT_TREE_ENTRIES) -> dict[str, Any]:
        return await asyncio.to_thread(self.local.tree, max_entries)

    async def preview(self, relpath: str, max_bytes: int = DEFAULT_PREVIEW_BYTES) -> dict[str, Any]:
        return await asyncio.to_thread(self.local.preview, relpath, max_bytes)

    async def open_raw(self, relpath: str) -> AsyncRawFile:
        return AsyncRawFile(await asyncio.to_thread(self.local.open_raw, relpath))

    async def iter_zip(self, chunk_size: int = DEFAULT_CHUNK_BYTES) -> AsyncGenerator[bytes, None]:
        chunks = self.local.iter_zip(chunk_size)
        try:
            while (chunk := await asyncio.to_thread(next, chunks, None)) is not None:
                yield chunk
        finally:
            # closes the folder and file fds the walk holds; off the loop as well
            await asyncio.to_thread(chunks.close)

    async def begin_upload(
        self, target_dir: str, filename: str, *, overwrite: bool, max_bytes: int
    ) -> AsyncUpload:
        writer = await asyncio.to_thread(
            self.local.begin_upload,
            target_dir,
            filename,
            overwrite=overwrite,
            max_bytes=max_bytes,
        )
        return AsyncUpload(writer)

    async def usage(self) -> int:
        return await asyncio.to_thread(disk_usage, self._usage_paths)
