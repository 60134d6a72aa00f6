"""The one async interface to a session's files, whichever side of the wire they are on.

``AsyncLocalWorkspace`` (a folder on this host, its blocking calls in the executor) and
``RemoteWorkspace`` (through a remote runner's file API) both satisfy it; the file
handlers, the storage limit and checkpoints use nothing else.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any, Protocol

__all__ = ["Workspace", "WorkspaceFile", "WorkspaceUpload"]


class WorkspaceFile(Protocol):
    """An open file being served: read it in chunks, then close it."""

    size_bytes: int
    mime_type: str
    #: the file's own name (the link target's, when reached through a symlink)
    name: str

    async def read(self, n: int) -> bytes: ...

    async def aclose(self) -> None: ...


class WorkspaceUpload(Protocol):
    """One uploaded file on its way in; nothing is visible until ``commit``."""

    relpath: str

    async def write(self, data: bytes) -> None: ...

    async def commit(self) -> str: ...

    async def abort(self) -> None: ...


class Workspace(Protocol):
    async def tree(self, max_entries: int = ...) -> dict[str, Any]: ...

    async def preview(self, relpath: str, max_bytes: int = ...) -> dict[str, Any]: ...

    async def open_raw(self, relpath: str) -> WorkspaceFile: ...

    def iter_zip(self, chunk_size: int = ...) -> AsyncGenerator[bytes, None]: ...

    async def begin_upload(
        self, target_dir: str, filename: str, *, overwrite: bool, max_bytes: int
    ) -> WorkspaceUpload: ...

    async def usage(self) -> int:
        """Bytes the workspace takes (allocated blocks, as ``du`` counts them)."""
        ...
