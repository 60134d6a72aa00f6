"""Path-safe access to one session's workspace folder on the host.

Every path a client (or the agent, by creating symlinks) hands us is hostile.  Nothing here
ever builds a host path string and opens it: each access walks from an ``O_DIRECTORY`` fd of
the workspace root, one component at a time, with ``O_NOFOLLOW`` and ``dir_fd=``.  A
component the agent swaps for a symlink between our check and our use therefore fails the
open (``ELOOP``/``ENOTDIR``) instead of being followed; we then read the link ourselves and
resolve it *lexically* against the real folders already walked, re-walking from the root.
A link that lands outside the root is refused (direct access, 400) or skipped (tree, ZIP).

All methods are synchronous (the runner's file API and the server's handlers use them
through ``AsyncLocalWorkspace``, which runs them in the executor).  The path rules are in
``paths.py``, uploads in ``upload.py``, the ZIP stream in ``zipstream.py``.

Usage::

    ws = LocalWorkspace(Path("/srv/ws/s1"))
    ws.preview("src/app.py")          # {path, content, language, size_bytes, lines, ...}
    for chunk in ws.iter_zip(): ...   # streamed ZIP, constant memory

Size: every operation here walks the same fd chain; keeping the walk and its users in one
module keeps the one security argument (above) in one place to review.
"""

from __future__ import annotations

import codecs
import errno
import logging
import os
import stat
from collections import deque
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from ..errors import BadRequest, Conflict, NotFound
from .languages import detect_language, looks_binary, mime_type
from .paths import LeadsOutside, check_filename, join_parts, split_path
from .upload import UPLOAD_TMP_PREFIX, UploadWriter, exists_conflict, same_owner
from .zipstream import zip_safe_name, zip_stream

__all__ = [
    "BOUNDED_DIR_ENTRIES",
    "DEFAULT_CHUNK_BYTES",
    "DEFAULT_PREVIEW_BYTES",
    "DEFAULT_TREE_ENTRIES",
    "MAX_DEPTH",
    "LocalWorkspace",
    "RawFile",
    "disk_usage",
]

log = logging.getLogger(__name__)

DEFAULT_TREE_ENTRIES = 10_000
#: entries shown inside a bounded folder (``.git``, ``node_modules``, any dot-folder)
BOUNDED_DIR_ENTRIES = 500
BOUNDED_DIR_NAMES = frozenset({"node_modules", "__pycache__", "venv", "site-packages"})
DEFAULT_PREVIEW_BYTES = 1024 * 1024
DEFAULT_CHUNK_BYTES = 64 * 1024
#: deeper folders are cut from the tree and skipped in the ZIP (bounds fds held open)
MAX_DEPTH = 128
MAX_SYMLINK_HOPS = 40  # what the kernel allows
SNIFF_BYTES = 8192

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a FIFO the agent planted must not hang an executor thread
_ANY_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="seconds")


@dataclass
class RawFile:
    """An open workspace file for streaming; the caller closes ``file``."""

    file: IO[bytes]
    size_bytes: int
    mime_type: str
    #: the name of the file itself (the link target's name when reached through a symlink)
    name: str

    def close(self) -> None:
        self.file.close()


def disk_usage(paths: Iterable[Path]) -> int:
    """Bytes allocated under ``paths`` (like ``du -s``; hard links counted once)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for root in paths:
        stack = [str(root)]
        while stack:
            folder = stack.pop()
            try:
                entries = os.scandir(folder)
            except OSError:
                continue
            with entries:
                for entry in entries:
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    key = (st.st_dev, st.st_ino)
                    if st.st_nlink > 1:
                        if key in seen:
                            continue
                        seen.add(key)
                    total += st.st_blocks * 512
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
    return total


class LocalWorkspace:
    """One session's workspace folder on this host.

    ``aliases`` are absolute paths under which the agent sees the same folder (e.g.
    ``/workspace`` inside a container): absolute symlinks below them stay inside.
    ``display_root`` is what ``tree()`` reports as ``root``.
    """

    def __init__(
        self,
        root: Path,
        *,
        aliases: Iterable[str] = ("/workspace",),
        display_root: str = "/workspace",
    ) -> None:
        # the root is ours (server config), so resolving it once up front is fine
        self.root = Path(os.path.realpath(root))
        self.display_root = display_root
        self._link_roots = sorted(
            {str(self.root), *(a.rstrip("/") for a in aliases if a.startswith("/"))},
            key=len,
            reverse=True,
        )

    def __repr__(self) -> str:
        return f"LocalWorkspace({str(self.root)!r})"

    # ------------------------------------------------------------------ the safe walk

    def _open_root(self) -> int:
        try:
            return os.open(self.root, _DIR_FLAGS)
        except FileNotFoundError:
            raise NotFound("the workspace folder no longer exists on the server") from None

    def _link_target(self, walked: list[str], target: str) -> list[str]:
        """The workspace components a symlink at ``walked/<link>`` points to (lexically).

        Correct because ``walked`` holds real folders only (we never followed a link to
        get there).  Raises ``LeadsOutside`` when the target leaves the root.
        """
        if target.startswith("/"):
            for base in self._link_roots:
                if target == base or target.startswith(base + "/"):
                    target = target[len(base) :].lstrip("/")
                    break
            else:
                raise LeadsOutside(target)
            parts: list[str] = []
        else:
            parts = list(walked)
        for piece in target.split("/"):
            if piece in ("", "."):
                continue
            if piece == "..":
                if not parts:
                    raise LeadsOutside(target)
                parts.pop()
            else:
                parts.append(piece)
        return parts

    def _walk(
        self, parts: list[str], *, want_dir: bool = False, create: bool = False
    ) -> tuple[int, list[str]]:
        """An fd for ``parts`` (caller closes it) and the real components it ended at.

        Symlinks that stay inside are followed by re-walking from the root; every open is
        ``O_NOFOLLOW`` relative to the folder fd we hold, so a swapped component can only
        make the walk fail, never escape.  ``create`` makes missing folders.
        """
        todo = deque(parts)
        walked: list[str] = []
        hops = 0
        fd = self._open_root()
        try:
            while todo:
                name = todo.popleft()
                as_dir = bool(todo) or want_dir
                try:
                    nfd = os.open(name, _DIR_FLAGS if as_dir else _ANY_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not (create and as_dir):
                        raise NotFound(
                            f"{join_parts([*walked, name, *todo])!r} does not exist"
                        ) from None
                    try:
                        os.mkdir(name, 0o777, dir_fd=fd)
                    except FileExistsError:
                        pass  # someone beat us to it: open whatever is there now
                    else:
                        same_owner(fd, name=name)
                    hops += 1  # bounds a create/delete race loop
                    if hops > MAX_SYMLINK_HOPS:
                        raise BadRequest(
                            "the folder keeps changing; try again", field="path"
                        ) from None
                    todo.appendleft(name)
                    continue
                except OSError as exc:
                    if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                        raise
                    try:
                        target = os.readlink(name, dir_fd=fd)
                    except OSError:
                        target = None
                    if target is None:  # not a link: a file where a folder was needed
                        where = join_parts([*walked, name])
                        if create:
                            raise Conflict(
                                f"{where!r} is a file, not a folder", field="path"
                            ) from None
                        raise NotFound(f"{where!r} is not a folder") from None
                    hops += 1
                    if hops > MAX_SYMLINK_HOPS:
                        raise BadRequest("too many levels of symlinks", field="path") from None
                    try:
                        resolved = self._link_target(walked, target)
                    except LeadsOutside:
                        raise BadRequest(
                            f"{join_parts([*walked, name])!r} is a symlink that leads out of the "
                            "workspace; it is not followed",
                            field="path",
                        ) from None
                    todo.extendleft(reversed(resolved))
                    walked = []
                    os.close(fd)
                    fd = -1
                    fd = self._open_root()
                    continue
                os.close(fd)
                fd = nfd
                walked.append(name)
            return fd, walked
        except BaseException:
            if fd >= 0:
                os.close(fd)
            raise

    def _open_regular(self, relpath: str) -> tuple[int, os.stat_result, list[str]]:
        fd, real = self._walk(split_path(relpath))
        try:
            st = os.fstat(fd)
            if stat.S_ISDIR(st.st_mode):
                raise BadRequest(
                    f"{relpath or '/'!r} is a folder; GET files/{{session_id}} lists the tree",
                    field="path",
                )
            if not stat.S_ISREG(st.st_mode):
                raise BadRequest(f"{relpath!r} is not a regular file", field="path")
            # the O_NONBLOCK only guarded the open; reads on regular files never block
            os.set_blocking(fd, True)
        except BaseException:
            os.close(fd)
            raise
        return fd, st, real

    def resolve(self, relpath: str) -> str:
        """The canonical workspace path ``relpath`` leads to (symlinks inside followed).

        ``BadRequest`` for hostile paths and links leading out, ``NotFound`` if missing.
        """
        fd, real = self._walk(split_path(relpath))
        os.close(fd)
        return join_parts(real)

    # ------------------------------------------------------------------ reading

    def tree(self, max_entries: int = DEFAULT_TREE_ENTRIES) -> dict[str, Any]:
        """``{root, tree, total_files, truncated}``: the workspace, folders first.

        Breadth first, so a huge subfolder cannot crowd out the top level; dot-folders
        and ``node_modules``-like folders are bounded to ``BOUNDED_DIR_ENTRIES`` entries.
        Symlinks are listed as ``type: "symlink"`` and never followed.
        """
        top: list[dict[str, Any]] = []
        total_files = 0
        count = 0
        truncated = False
        # (components, children list to fill, node, bound) — bound: [remaining] shared by
        # the whole subtree of a bounded folder
        queue: deque[
            tuple[list[str], list[dict[str, Any]], dict[str, Any] | None, list[int] | None]
        ]
        queue = deque([([], top, None, None)])
        while queue:
            parts, children, node, bound = queue.popleft()
            try:
                fd = self._open_strict(parts)
            except OSError:
                continue  # vanished or swapped for a link since it was listed
            listing: list[tuple[str, os.stat_result]] = []
            cut = False
            try:
                # stat while the folder fd is open: DirEntry.stat() uses it (fstatat)
                with os.scandir(fd) as it:
                    for entry in it:
                        if entry.name.startswith(UPLOAD_TMP_PREFIX):
                            continue
                        if len(listing) >= max_entries:
                            cut = True  # a folder with millions of entries: stop reading
                            break
                        try:
                            listing.append((entry.name, entry.stat(follow_symlinks=False)))
                        except OSError:
                            continue
            except OSError:
                continue
            finally:
                os.close(fd)
            listing.sort(key=lambda item: (not stat.S_ISDIR(item[1].st_mode), item[0]))
            if cut:
                truncated = True
                if node is not None:
                    node["truncated"] = True
            for name, st in listing:
                if count >= max_entries or (bound is not None and bound[0] <= 0):
                    truncated = True
                    if node is not None:
                        node["truncated"] = True
                    break
                path = join_parts([*parts, name])
                child: dict[str, Any] = {
                    "name": name,
                    "path": path,
                    "type": "file",
                    "size_bytes": st.st_size,
                    "modified": _iso(st.st_mtime),
                }
                count += 1
                if bound is not None:
                    bound[0] -= 1
                if stat.S_ISLNK(st.st_mode):
                    child["type"] = "symlink"
                    child["size_bytes"] = 0
                elif stat.S_ISDIR(st.st_mode):
                    child["type"] = "directory"
                    child["size_bytes"] = 0
                    child["children"] = []
                    if len(parts) + 1 >= MAX_DEPTH:
                        child["truncated"] = truncated = True
                    else:
                        sub = bound
                        if sub is None and (name.startswith(".") or name in BOUNDED_DIR_NAMES):
                            sub = [BOUNDED_DIR_ENTRIES]
                        queue.append(([*parts, name], child["children"], child, sub))
                elif stat.S_ISREG(st.st_mode):
                    total_files += 1
                else:
                    child["type"] = "other"  # FIFO, socket, device: listed, never read
                children.append(child)
        return {
            "root": self.display_root,
            "tree": top,
            "total_files": total_files,
            "truncated": truncated,
        }

    def _open_strict(self, parts: list[str]) -> int:
        """A folder fd for ``parts`` following no symlink at all (tree and ZIP walk)."""
        fd = self._open_root()
        try:
            for name in parts:
                nfd = os.open(name, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = nfd
        except BaseException:
            os.close(fd)
            raise
        return fd

    def preview(self, relpath: str, max_bytes: int = DEFAULT_PREVIEW_BYTES) -> dict[str, Any]:
        """Text: ``{path, content, language, size_bytes, lines, truncated, binary: False}``;
        binary: ``{path, binary: True, size_bytes, mime_type}`` (no content)."""
        fd, st, real = self._open_regular(relpath)
        with os.fdopen(fd, "rb") as f:
            data = f.read(max_bytes + 1)
        name = real[-1]
        truncated = len(data) > max_bytes
        data = data[:max_bytes]
        if looks_binary(data[:SNIFF_BYTES], whole=len(data) <= SNIFF_BYTES and not truncated):
            return {
                "path": relpath,
                "binary": True,
                "size_bytes": st.st_size,
                "mime_type": mime_type(name) or "application/octet-stream",
            }
        # final=not truncated: a character cut by the limit is dropped, not mangled
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        content = decoder.decode(data, final=not truncated)
        lines = content.count("\n") + (1 if content and not content.endswith("\n") else 0)
        return {
            "path": relpath,
            "content": content,
            "language": detect_language(name, data[:256]),
            "size_bytes": st.st_size,
            "lines": lines,
            "truncated": truncated,
            "binary": False,
        }

    def open_raw(self, relpath: str) -> RawFile:
        """The file opened for streaming, its size and MIME type (sniffed when unknown)."""
        fd, st, real = self._open_regular(relpath)
        f = os.fdopen(fd, "rb")
        try:
            mime = mime_type(real[-1])
            if mime is None:
                head = f.read(SNIFF_BYTES)
                f.seek(0)
                mime = (
                    "application/octet-stream"
                    if looks_binary(head, whole=len(head) < SNIFF_BYTES)
                    else "text/plain; charset=utf-8"
                )
        except BaseException:
            f.close()
            raise
        return RawFile(file=f, size_bytes=st.st_size, mime_type=mime, name=real[-1])

    def iter_zip(self, chunk_size: int = DEFAULT_CHUNK_BYTES) -> Generator[bytes, None, None]:
        """The whole workspace as a ZIP (``zipstream.py``), yielded in pieces of about
        ``chunk_size`` bytes.  Links out of the workspace, links to folders, FIFOs and the
        like are skipped; links to files inside are stored as the file they point to."""
        return zip_stream(self._zip_entries(), chunk_size)

    def _zip_entries(self) -> Iterator[tuple[str, int | None, os.stat_result]]:
        """Depth first, sorted: (archive name, open fd or None for a folder, stat)."""
        root_fd = self._open_root()
        # one (fd, components, remaining names) per open folder: fds held = depth ≤ MAX_DEPTH
        stack: list[tuple[int, list[str], deque[str]]] = []
        try:
            stack.append((root_fd, [], deque(sorted(os.listdir(root_fd)))))
            while stack:
                dfd, parts, names = stack[-1]
                if not names:
                    stack.pop()
                    os.close(dfd)
                    continue
                name = names.popleft()
                if name.startswith(UPLOAD_TMP_PREFIX):
                    continue
                arcname = join_parts([*parts, name])
                if not zip_safe_name(arcname):
                    log.warning("agcluster zip: skipped %r (name cannot be stored)", arcname)
                    continue
                try:
                    fd = os.open(name, _ANY_FLAGS, dir_fd=dfd)
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR) or isinstance(
                        exc, FileNotFoundError
                    ):
                        item = self._zip_link(arcname)
                        if item is not None:
                            yield item
                        continue
                    log.warning("agcluster zip: skipped %r (%s)", arcname, exc)
                    continue
                st = os.fstat(fd)
                if stat.S_ISDIR(st.st_mode):
                    if len(parts) + 1 >= MAX_DEPTH:
                        os.close(fd)
                        log.warning(
                            "agcluster zip: skipped %r (deeper than %d)", arcname, MAX_DEPTH
                        )
                        continue
                    try:
                        listing = deque(sorted(os.listdir(fd)))
                    except OSError:
                        os.close(fd)
                        continue
                    stack.append((fd, [*parts, name], listing))
                    yield arcname, None, st
                elif stat.S_ISREG(st.st_mode):
                    os.set_blocking(fd, True)
                    yield arcname, fd, st  # the consumer closes it
                else:
                    os.close(fd)
        finally:
            for dfd, _, _ in stack:
                os.close(dfd)

    def _zip_link(self, arcname: str) -> tuple[str, int, os.stat_result] | None:
        """A symlink met while zipping: the file it points to if that is inside, else None."""
        try:
            fd, _ = self._walk(arcname.split("/"))
        except (BadRequest, NotFound, OSError):
            return None  # leads outside, dangling, or vanished
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)  # links to folders: skipped (cycles, duplicates)
            return None
        os.set_blocking(fd, True)
        return arcname, fd, st

    # ------------------------------------------------------------------ writing

    def begin_upload(
        self, target_dir: str, filename: str, *, overwrite: bool, max_bytes: int
    ) -> UploadWriter:
        """Start an upload of ``filename`` into ``target_dir`` (created if missing).

        Fails early with ``Conflict`` if the file exists and ``overwrite`` is false (the
        final rename checks again, atomically).
        """
        check_filename(filename)
        dir_fd, real = self._walk(split_path(target_dir, "target_path"), want_dir=True, create=True)
        try:
            relpath = join_parts([*real, filename])
            try:
                st = os.stat(filename, dir_fd=dir_fd, follow_symlinks=False)
            except FileNotFoundError:
                pass
            else:
                if stat.S_ISDIR(st.st_mode):
                    raise Conflict(f"{relpath!r} is a folder", field="files")
                if not overwrite:
                    raise exists_conflict(relpath)
            return UploadWriter(dir_fd, real, filename, overwrite=overwrite, max_bytes=max_bytes)
        except BaseException:
            os.close(dir_fd)
            raise

    def write_upload(
        self,
        target_dir: str,
        filename: str,
        source: bytes | IO[bytes],
        *,
        overwrite: bool = False,
        max_bytes: int,
        chunk_size: int = DEFAULT_CHUNK_BYTES,
    ) -> str:
        """Write ``source`` to ``target_dir/filename`` atomically; the new relative path.

        ``TooLarge`` over ``max_bytes`` (nothing left behind), ``Conflict`` if it exists.
        """
        with self.begin_upload(
            target_dir, filename, overwrite=overwrite, max_bytes=max_bytes
        ) as writer:
            if isinstance(source, (bytes, bytearray, memoryview)):
                writer.write(bytes(source))
            else:
                while chunk := source.read(chunk_size):
                    writer.write(chunk)
            return writer.commit()

    def delete(self, relpath: str) -> None:
        """Remove a file, a symlink (not what it points to) or an empty folder."""
        parts = split_path(relpath)
        if not parts:
            raise BadRequest("the workspace root cannot be deleted", field="path")
        dir_fd, _ = self._walk(parts[:-1], want_dir=True)
        name = parts[-1]
        try:
            try:
                st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            except FileNotFoundError:
                raise NotFound(f"{relpath!r} does not exist") from None
            if stat.S_ISDIR(st.st_mode):
                try:
                    os.rmdir(name, dir_fd=dir_fd)
                except OSError as exc:
                    if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                        raise Conflict(f"folder {relpath!r} is not empty", field="path") from None
                    raise
            else:
                os.unlink(name, dir_fd=dir_fd)
        finally:
            os.close(dir_fd)
