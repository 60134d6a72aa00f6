"""A session's files: the path rules (``paths.py``), what a file is (``languages.py``),
uploads (``upload.py``), the ZIP (``zipstream.py``), a folder here (``local.py``, awaited
through ``async_local.py``) or through a remote runner (``remote.py``), all behind one
async ``Workspace`` (``protocol.py``)."""

from __future__ import annotations

from .async_local import AsyncLocalWorkspace, AsyncRawFile, AsyncUpload
from .languages import detect_language
from .local import (
    DEFAULT_CHUNK_BYTES,
    DEFAULT_PREVIEW_BYTES,
    DEFAULT_TREE_ENTRIES,
    LocalWorkspace,
    RawFile,
    disk_usage,
)
from .paths import check_filename, split_path
from .protocol import Workspace, WorkspaceFile, WorkspaceUpload
from .upload import UPLOAD_TMP_PREFIX, UploadSink, UploadWriter

__all__ = [
    "DEFAULT_CHUNK_BYTES",
    "DEFAULT_PREVIEW_BYTES",
    "DEFAULT_TREE_ENTRIES",
    "UPLOAD_TMP_PREFIX",
    "AsyncLocalWorkspace",
    "AsyncRawFile",
    "AsyncUpload",
    "LocalWorkspace",
    "RawFile",
    "UploadSink",
    "UploadWriter",
    "Workspace",
    "WorkspaceFile",
    "WorkspaceUpload",
    "check_filename",
    "detect_language",
    "disk_usage",
    "split_path",
]
