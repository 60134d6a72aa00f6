"""An upload in progress: a temp file in the target folder, renamed into place on commit
(all or nothing), never over an existing file unless asked."""

from __future__ import annotations

import errno
import os
import secrets
from typing import Protocol

from ..errors import Conflict, TooLarge
from ..units import format_bytes
from .paths import join_parts

__all__ = ["UPLOAD_TMP_PREFIX", "UploadSink", "UploadWriter", "exists_conflict", "same_owner"]

#: the temp files of uploads in progress (the tree and the ZIP skip them)
UPLOAD_TMP_PREFIX = ".agcluster-upload-"


class UploadSink(Protocol):
    """Where one uploaded file goes while it arrives; nothing is visible until ``commit``."""

    relpath: str

    def write(self, data: bytes) -> None: ...

    def commit(self) -> str: ...

    def abort(self) -> None: ...


class UploadWriter:
    """One upload in progress: a temp file in the target folder, renamed on ``commit``.

    Over ``max_bytes``, or on ``abort``, the temp file is removed: nothing partial stays.
    """

    def __init__(
        self,
        dir_fd: int,
        target_parts: list[str],
        filename: str,
        *,
        overwrite: bool,
        max_bytes: int,
    ) -> None:
        self._dir_fd = dir_fd
        self.filename = filename
        self.relpath = join_parts([*target_parts, filename])
        self.overwrite = overwrite
        self.max_bytes = max_bytes
        self.size = 0
        self._tmp = f"{UPLOAD_TMP_PREFIX}{secrets.token_hex(8)}.part"
        self._fd: int | None = os.open(
            self._tmp,
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
            0o666,
            dir_fd=dir_fd,
        )
        same_owner(dir_fd, fd=self._fd)
        self._done = False

    def __enter__(self) -> UploadWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.abort()

    def write(self, data: bytes) -> None:
        if self._fd is None:
            raise RuntimeError("upload already finished")
        if self.size + len(data) > self.max_bytes:
            self.abort()
            raise TooLarge(
                f"file {self.filename!r} is larger than the upload limit of "
                f"{format_bytes(self.max_bytes)} ({self.max_bytes} bytes); nothing was written",
                field="files",
            )
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
        self.size += len(data)

    def commit(self) -> str:
        """Move the file into place atomically; ``Conflict`` if it exists (unless overwrite)."""
        if self._fd is None or self._done:
            raise RuntimeError("upload already finished")
        try:
            os.close(self._fd)
            self._fd = None
            fd = self._dir_fd
            if self.overwrite:
                try:
                    os.replace(self._tmp, self.filename, src_dir_fd=fd, dst_dir_fd=fd)
                except IsADirectoryError:
                    raise Conflict(
                        f"{self.relpath!r} is a folder; it cannot be overwritten by a file",
                        field="files",
                    ) from None
            else:
                self._link_no_clobber()
            self._done = True
        finally:
            self.abort()
        return self.relpath

    def _link_no_clobber(self) -> None:
        # link() fails atomically with EEXIST: no window between checking and creating
        fd = self._dir_fd
        try:
            os.link(self._tmp, self.filename, src_dir_fd=fd, dst_dir_fd=fd)
        except FileExistsError:
            raise exists_conflict(self.relpath) from None
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
                raise
            # a filesystem without hard links: check, then rename (tiny race accepted)
            if _lexists(self.filename, fd):
                raise exists_conflict(self.relpath) from None
            os.rename(self._tmp, self.filename, src_dir_fd=fd, dst_dir_fd=fd)
            return
        os.unlink(self._tmp, dir_fd=fd)

    def abort(self) -> None:
        """Remove the temp file (if any) and release the folder; safe to call twice."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._dir_fd >= 0:
            try:
                os.unlink(self._tmp, dir_fd=self._dir_fd)
            except FileNotFoundError:
                pass
            os.close(self._dir_fd)
            self._dir_fd = -1


def same_owner(dir_fd: int, *, name: str | None = None, fd: int | None = None) -> None:
    """Give what we created the owner of its folder when the server runs as root, so the
    agent (another uid: ``nobody`` locally, 1000 in a container) can edit uploads."""
    if os.geteuid() != 0:
        return
    st = os.fstat(dir_fd)
    if fd is not None:
        os.fchown(fd, st.st_uid, st.st_gid)
    elif name is not None:
        os.chown(name, st.st_uid, st.st_gid, dir_fd=dir_fd, follow_symlinks=False)


def exists_conflict(relpath: str) -> Conflict:
    return Conflict(f"{relpath!r} already exists; pass overwrite=true to replace it", field="files")


def _lexists(name: str, dir_fd: int) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True
