"""Putting recorded files back into a workspace, by the same rules as uploads.

Every write goes down from an ``O_DIRECTORY`` fd of the workspace root with
``O_NOFOLLOW``: a symlink the agent left where a folder must be is removed (it is inside
the workspace) and replaced by a real folder, never followed, so nothing is written
outside.  Files are written to a temporary name next to their target and renamed over
it, so a reader sees the old file or the new one, never half of one; links are made as
links.  When the server runs as root (the docker provider), what it creates is given
to the workspace's owner, so the agent can go on working on it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterable
from pathlib import Path

from .store import MODE_EXEC, Entry, SnapshotStore

__all__ = ["TMP_PREFIX", "apply_files"]

#: temporary names while a file is written (never left behind: renamed or removed)
TMP_PREFIX = ".agcluster-restore-"


class _Root:
    def __init__(self, workspace: Path) -> None:
        self.fd = os.open(workspace, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        st = os.fstat(self.fd)
        # chown only as root, and only when the owner is someone else
        self.owner = (st.st_uid, st.st_gid) if os.geteuid() == 0 else None

    def own(self, name: str, dir_fd: int) -> None:
        if self.owner is not None and self.owner != (0, 0):
            os.chown(name, *self.owner, dir_fd=dir_fd, follow_symlinks=False)

    def parent(self, path: str, create: bool) -> tuple[int, str] | None:
        """An fd of ``path``'s folder (the caller closes it) and the last name; folders
        made (or links in the way replaced) when ``create``; None when it is not there."""
        *folders, name = path.split("/")
        fd = os.dup(self.fd)
        try:
            for folder in folders:
                try:
                    sub = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
                except OSError as exc:
                    if exc.errno not in (errno.ENOENT, errno.ELOOP, errno.ENOTDIR):
                        raise
                    if not create:
                        os.close(fd)
                        return None
                    if exc.errno != errno.ENOENT:
                        os.unlink(folder, dir_fd=fd)  # a file or link where a folder goes
                    os.mkdir(folder, 0o755, dir_fd=fd)
                    self.own(folder, fd)
                    sub = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
                os.close(fd)
                fd = sub
        except BaseException:
            os.close(fd)
            raise
        return fd, name

    def close(self) -> None:
        os.close(self.fd)


def _clear(name: str, dir_fd: int) -> None:
    """Remove whatever is at ``name`` (a folder with all it holds; links not followed)."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(name, dir_fd=dir_fd)
        return
    # shutil.rmtree takes dir_fd only from 3.11: the same fd walk, by hand
    fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dir_fd)
    try:
        with os.scandir(fd) as entries:
            names = [e.name for e in entries]
        for child in names:
            _clear(child, fd)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=dir_fd)


def _write(root: _Root, store: SnapshotStore, path: str, entry: Entry) -> None:
    found = root.parent(path, create=True)
    assert found is not None
    fd, name = found
    tmp = f"{TMP_PREFIX}{secrets.token_hex(6)}"
    try:
        if entry.is_link:
            os.symlink(store.read(entry), tmp, dir_fd=fd)
        else:
            mode = 0o755 if entry.mode == MODE_EXEC else 0o644
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
            out = os.open(tmp, flags, mode, dir_fd=fd)
            with os.fdopen(out, "wb") as handle:
                for chunk in store.iter_chunks(entry):
                    handle.write(chunk)
        root.own(tmp, fd)
        with contextlib.suppress(FileNotFoundError):
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                _clear(name, fd)  # a folder where the file goes
        os.rename(tmp, name, src_dir_fd=fd, dst_dir_fd=fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=fd)
        raise
    finally:
        os.close(fd)


def _delete(root: _Root, path: str) -> None:
    found = root.parent(path, create=False)
    if found is None:
        return
    fd, name = found
    try:
        _clear(name, fd)
    finally:
        os.close(fd)
    # folders left empty by the deletion go too (git keeps no empty folders either)
    parts = path.split("/")[:-1]
    while parts:
        found = root.parent("/".join(parts), create=False)
        if found is None:
            return
        fd, name = found
        try:
            os.rmdir(name, dir_fd=fd)
        except OSError:
            return
        finally:
            os.close(fd)
        parts.pop()


def apply_files(
    store: SnapshotStore,
    workspace: Path,
    target: dict[str, Entry],
    current: dict[str, Entry],
    paths: Iterable[str],
) -> list[str]:
    """Make each of ``paths`` in the workspace what ``target`` holds for it (deleting it
    when target has none); returns the paths changed, sorted."""
    root = _Root(workspace)
    changed: list[str] = []
    try:
        for path in sorted(set(paths)):
            want, have = target.get(path), current.get(path)
            if want == have:
                continue
            if want is None:
                _delete(root, path)
            else:
                _write(root, store, path, want)
            changed.append(path)
    finally:
        root.close()
    return changed
