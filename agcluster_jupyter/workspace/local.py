"""Path-safe access to one session's workspace folder on the host.

Every path a client (or the agent, by creating symlinks) hands us is hostile.  Nothing here
ever builds a host path string and opens it: each access walks from an ``O_DIRECTORY`` fd of
the workspace root, one component at a time, with ``O_NOFOLLOW`` and ``dir_fd=``.  A
component the agent swaps for a symlink between our check and our use therefore fails the
open (``ELOOP``/``ENOTDIR``) instead of being followed; we then read the link ourselves and
resolve it *lexically* against the real folders already walked, re-walking from the root.
A link that lands outside the root is refused (direct access, 400) or skipped (tree, ZIP).

All methods are synchronous: the handlers run them in an executor.

Usage::

    ws = LocalWorkspace(Path("/srv/ws/s1"))
    ws.preview("src/app.py")          # {path, content, language, size_bytes, lines, ...}
    for chunk in ws.iter_zip(): ...   # streamed ZIP, constant memory
"""

from __future__ import annotations

import codecs
import errno
import logging
import mimetypes
import os
import secrets
import stat
import time
import zipfile
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import IO, Any, Protocol

from .errors import BadRequest, Conflict, NotFound, TooLarge

__all__ = [
    "disk_usage",
    "DEFAULT_CHUNK_BYTES",
    "DEFAULT_PREVIEW_BYTES",
    "DEFAULT_TREE_ENTRIES",
    "LocalWorkspace",
    "RawFile",
    "UploadSink",
    "UploadWriter",
    "check_filename",
    "detect_language",
    "split_path",
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
MAX_NAME_BYTES = 255  # NAME_MAX
MAX_PATH_BYTES = 4096  # PATH_MAX
MAX_SYMLINK_HOPS = 40  # what the kernel allows
SNIFF_BYTES = 8192
UPLOAD_TMP_PREFIX = ".agcluster-upload-"

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a FIFO the agent planted must not hang an executor thread
_ANY_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
#: deflate level: 1 is ~3x faster than 6 on text for ~10 % bigger archives; a workspace
#: download is usually waiting on the CPU, not the network
ZIP_LEVEL = 1
# already compressed: deflating them again costs CPU and gains nothing
_STORED_EXTS = frozenset(
    ".zip .gz .tgz .bz2 .xz .zst .7z .rar .jar .whl .png .jpg .jpeg .gif .webp .mp3 .mp4"
    " .mov .avi .mkv .webm .ogg .flac .pdf .parquet .docx .xlsx .pptx .npz".split()
)


# ---------------------------------------------------------------------------- paths


def split_path(relpath: str, field: str = "path") -> list[str]:
    """The components of a relative POSIX workspace path; ``[]`` is the root.

    Refuses (``BadRequest``) what could mean anything but "this name in that folder":
    NUL bytes, backslashes, absolute paths, ``.``/``..``, empty or overlong names.
    One trailing ``/`` is tolerated (``data/`` is ``data``).
    """
    if not isinstance(relpath, str):
        raise BadRequest(f"{field} must be a string", field=field)
    if "\x00" in relpath:
        raise BadRequest(f"{field} contains a NUL byte; send a plain relative path", field=field)
    if "\\" in relpath:
        raise BadRequest(
            f"{field} contains a backslash; separate folders with '/' (e.g. 'src/app.py')",
            field=field,
        )
    if relpath.startswith("/"):
        raise BadRequest(
            f"{field} must be relative to the workspace, without a leading '/'", field=field
        )
    if relpath.endswith("/"):
        relpath = relpath[:-1]
    if not relpath:
        return []
    try:
        encoded = relpath.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise BadRequest(f"{field} is not valid UTF-8 text", field=field) from None
    if len(encoded) > MAX_PATH_BYTES:
        raise BadRequest(f"{field} is longer than {MAX_PATH_BYTES} bytes", field=field)
    parts = relpath.split("/")
    for part in parts:
        if not part:
            raise BadRequest(f"{field} has an empty name ('//'); remove the extra '/'", field=field)
        if part in (".", ".."):
            raise BadRequest(
                f"{field} may not contain '.' or '..'; give the path from the workspace root",
                field=field,
            )
        if len(part.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
            raise BadRequest(
                f"{field} has a name longer than {MAX_NAME_BYTES} bytes: {part[:40]!r}...",
                field=field,
            )
    return parts


def check_filename(name: str, field: str = "filename") -> str:
    """``name`` if it is a single safe file name; otherwise a 400 saying what to fix.

    Nothing is stripped or rewritten: a client sending ``../x`` or ``C:\\x`` is told so.
    """
    if not isinstance(name, str) or not name:
        raise BadRequest(f"{field} is empty; every uploaded file needs a name", field=field)
    if "\x00" in name:
        raise BadRequest(f"{field} {name!r} contains a NUL byte", field=field)
    if "/" in name or "\\" in name:
        raise BadRequest(
            f"{field} {name!r} contains a path separator; send a bare file name and put the "
            "folder in target_path",
            field=field,
        )
    if name in (".", ".."):
        raise BadRequest(f"{field} {name!r} is not a file name", field=field)
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        # legal on Linux, but a newline or escape in a name trips up shells and agents
        raise BadRequest(f"{field} {name!r} contains control characters", field=field)
    try:
        encoded = name.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise BadRequest(f"{field} is not valid UTF-8 text", field=field) from None
    if len(encoded) > MAX_NAME_BYTES:
        raise BadRequest(f"{field} is longer than {MAX_NAME_BYTES} bytes", field=field)
    return name


def _join(parts: Iterable[str]) -> str:
    return "/".join(parts)


class _LeadsOutside(Exception):
    """A symlink resolves to somewhere outside the workspace."""


# ---------------------------------------------------------------------------- languages

_EXT_LANGUAGES: dict[str, str] = {}
for _lang, _exts in {
    "python": ".py .pyi .pyw .pyx",
    "javascript": ".js .mjs .cjs .jsx",
    "typescript": ".ts .mts .cts .tsx",
    "json": ".json .jsonl .ndjson .geojson .ipynb .jsonc",
    "yaml": ".yaml .yml",
    "markdown": ".md .markdown .mdx",
    "html": ".html .htm .xhtml",
    "css": ".css .scss .sass .less",
    "shell": ".sh .bash .zsh .ksh .fish",
    "sql": ".sql",
    "csv": ".csv .tsv",
    "toml": ".toml",
    "rust": ".rs",
    "go": ".go",
    "java": ".java",
    "c": ".c .h",
    "cpp": ".cpp .cc .cxx .c++ .hpp .hh .hxx .h++",
    "r": ".r .rmd",
    "julia": ".jl",
    "xml": ".xml .svg .xsd .xsl",
    "ruby": ".rb",
    "php": ".php",
    "kotlin": ".kt .kts",
    "swift": ".swift",
    "scala": ".scala",
    "lua": ".lua",
    "perl": ".pl .pm",
    "ini": ".ini .cfg .conf",
    "dockerfile": ".dockerfile",
    "latex": ".tex",
    "restructuredtext": ".rst",
    "powershell": ".ps1",
    "protobuf": ".proto",
    "graphql": ".graphql .gql",
    "text": ".txt .log .text",
}.items():
    for _ext in _exts.split():
        _EXT_LANGUAGES[_ext] = _lang

_NAME_LANGUAGES = {
    "dockerfile": "dockerfile",
    "containerfile": "dockerfile",
    "makefile": "makefile",
    "gnumakefile": "makefile",
    "cmakelists.txt": "cmake",
    "gemfile": "ruby",
    "rakefile": "ruby",
    "vagrantfile": "ruby",
    "pipfile": "toml",
    ".bashrc": "shell",
    ".bash_profile": "shell",
    ".zshrc": "shell",
    ".profile": "shell",
    ".env": "shell",
}

_SHEBANG_LANGUAGES = {
    "python": "python",
    "node": "javascript",
    "deno": "typescript",
    "ts-node": "typescript",
    "bun": "javascript",
    "sh": "shell",
    "bash": "shell",
    "zsh": "shell",
    "dash": "shell",
    "ksh": "shell",
    "fish": "shell",
    "rscript": "r",
    "julia": "julia",
    "ruby": "ruby",
    "perl": "perl",
    "php": "php",
    "lua": "lua",
}


def detect_language(name: str, head: bytes = b"") -> str:
    """A highlighter language for a file name (extension or well-known name), then shebang."""
    lower = name.lower()
    if lower in _NAME_LANGUAGES:
        return _NAME_LANGUAGES[lower]
    if lower.startswith(("dockerfile.", "containerfile.")):
        return "dockerfile"
    if lower.startswith("makefile."):
        return "makefile"
    ext = PurePosixPath(lower).suffix
    if ext in _EXT_LANGUAGES:
        return _EXT_LANGUAGES[ext]
    if head.startswith(b"#!"):
        words = head[2:].split(b"\n", 1)[0].decode("utf-8", "replace").split()
        if words:
            prog = words[0].rsplit("/", 1)[-1]
            if prog == "env":
                args = [w for w in words[1:] if not w.startswith("-")]
                prog = args[0] if args else ""
            prog = prog.lower().rstrip("0123456789.")  # python3.12 → python
            if prog in _SHEBANG_LANGUAGES:
                return _SHEBANG_LANGUAGES[prog]
    return "text"


def _looks_binary(head: bytes, *, whole: bool) -> bool:
    """NUL bytes or invalid UTF-8 in ``head``; ``whole``: head is the entire file."""
    if b"\x00" in head:
        return True
    try:
        # not whole: a multibyte character cut at the sniff boundary is not an error
        codecs.getincrementaldecoder("utf-8")().decode(head, final=whole)
    except UnicodeDecodeError:
        return True
    return False


def _mime_type(name: str) -> str | None:
    return mimetypes.guess_type(name, strict=False)[0]


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="seconds")


def _zip_time(ts: float) -> tuple[int, int, int, int, int, int]:
    t = time.localtime(ts)[:6]
    if t[0] < 1980:
        return _ZIP_EPOCH
    if t[0] > 2107:
        return (2107, 12, 31, 23, 59, 58)
    return (t[0], t[1], t[2], t[3], t[4], t[5])


# ---------------------------------------------------------------------------- results


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


class UploadSink(Protocol):
    """Where one uploaded file goes while it arrives; nothing is visible until ``commit``."""

    relpath: str

    def write(self, data: bytes) -> None: ...

    def commit(self) -> str: ...

    def abort(self) -> None: ...


class _ZipSink:
    """A write-only, unseekable file for ``zipfile``: bytes pile up until drained."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def write(self, data: bytes, /) -> int:
        self.buf += data
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def drain(self) -> bytes:
        out = bytes(self.buf)
        self.buf.clear()
        return out


# ---------------------------------------------------------------------------- uploads


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
        self.relpath = _join([*target_parts, filename])
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
        _same_owner(dir_fd, fd=self._fd)
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
                f"{_human(self.max_bytes)} ({self.max_bytes} bytes); nothing was written",
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
            raise _exists(self.relpath) from None
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
                raise
            # a filesystem without hard links: check, then rename (tiny race accepted)
            if _lexists(self.filename, fd):
                raise _exists(self.relpath) from None
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


def _same_owner(dir_fd: int, *, name: str | None = None, fd: int | None = None) -> None:
    """Give what we created the owner of its folder when the server runs as root, so the
    agent (another uid: ``nobody`` locally, 1000 in a container) can edit uploads."""
    if os.geteuid() != 0:
        return
    st = os.fstat(dir_fd)
    if fd is not None:
        os.fchown(fd, st.st_uid, st.st_gid)
    elif name is not None:
        os.chown(name, st.st_uid, st.st_gid, dir_fd=dir_fd, follow_symlinks=False)


def _exists(relpath: str) -> Conflict:
    return Conflict(f"{relpath!r} already exists; pass overwrite=true to replace it", field="files")


def _lexists(name: str, dir_fd: int) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def _human(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:g} {unit}"
    return f"{n} bytes"


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


# ---------------------------------------------------------------------------- workspace


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
        get there).  Raises ``_LeadsOutside`` when the target leaves the root.
        """
        if target.startswith("/"):
            for base in self._link_roots:
                if target == base or target.startswith(base + "/"):
                    target = target[len(base) :].lstrip("/")
                    break
            else:
                raise _LeadsOutside(target)
            parts: list[str] = []
        else:
            parts = list(walked)
        for piece in target.split("/"):
            if piece in ("", "."):
                continue
            if piece == "..":
                if not parts:
                    raise _LeadsOutside(target)
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
                            f"{_join([*walked, name, *todo])!r} does not exist"
                        ) from None
                    try:
                        os.mkdir(name, 0o777, dir_fd=fd)
                    except FileExistsError:
                        pass  # someone beat us to it: open whatever is there now
                    else:
                        _same_owner(fd, name=name)
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
                        where = _join([*walked, name])
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
                    except _LeadsOutside:
                        raise BadRequest(
                            f"{_join([*walked, name])!r} is a symlink that leads out of the "
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
        return _join(real)

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
                path = _join([*parts, name])
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
        if _looks_binary(data[:SNIFF_BYTES], whole=len(data) <= SNIFF_BYTES and not truncated):
            return {
                "path": relpath,
                "binary": True,
                "size_bytes": st.st_size,
                "mime_type": _mime_type(name) or "application/octet-stream",
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
            mime = _mime_type(real[-1])
            if mime is None:
                head = f.read(SNIFF_BYTES)
                f.seek(0)
                mime = (
                    "application/octet-stream"
                    if _looks_binary(head, whole=len(head) < SNIFF_BYTES)
                    else "text/plain; charset=utf-8"
                )
        except BaseException:
            f.close()
            raise
        return RawFile(file=f, size_bytes=st.st_size, mime_type=mime, name=real[-1])

    def iter_zip(self, chunk_size: int = DEFAULT_CHUNK_BYTES) -> Iterator[bytes]:
        """The whole workspace as a ZIP, yielded in pieces of about ``chunk_size`` bytes.

        Constant memory in the size of the files: ``zipfile`` writes onto an unseekable
        sink (so it uses data descriptors) that is drained as it fills.  The central
        directory is O(number of files), as any ZIP's is.  Links out of the workspace,
        links to folders, FIFOs and the like are skipped; links to files inside are
        stored as the file they point to.
        """
        sink = _ZipSink()
        with zipfile.ZipFile(
            sink, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True, compresslevel=ZIP_LEVEL
        ) as zf:
            for arcname, fd, st in self._zip_entries():
                try:
                    if fd is None:  # a folder: keeps empty folders in the archive
                        info = zipfile.ZipInfo(arcname + "/", _zip_time(st.st_mtime))
                        info.external_attr = ((stat.S_IFDIR | 0o755) << 16) | 0x10
                        zf.writestr(info, b"", compress_type=zipfile.ZIP_STORED)
                    else:
                        yield from self._zip_file(zf, sink, arcname, fd, st, chunk_size)
                finally:
                    if fd is not None:
                        os.close(fd)
                if len(sink.buf) >= chunk_size:
                    yield sink.drain()
        tail = sink.drain()
        if tail:
            yield tail

    def _zip_file(
        self,
        zf: zipfile.ZipFile,
        sink: _ZipSink,
        arcname: str,
        fd: int,
        st: os.stat_result,
        chunk_size: int,
    ) -> Iterator[bytes]:
        info = zipfile.ZipInfo(arcname, _zip_time(st.st_mtime))
        info.external_attr = (stat.S_IFREG | stat.S_IMODE(st.st_mode)) << 16
        info.compress_type = (
            zipfile.ZIP_STORED
            if PurePosixPath(arcname.lower()).suffix in _STORED_EXTS
            else zipfile.ZIP_DEFLATED
        )
        if info.compress_type == zipfile.ZIP_DEFLATED:
            _set_level(info, ZIP_LEVEL)
        # zipfile picks zip64 from the announced size; we never write more than that
        info.file_size = st.st_size
        remaining = st.st_size
        with zf.open(info, "w") as out:
            while remaining > 0:
                data = os.read(fd, min(chunk_size, remaining))
                if not data:
                    break  # shrank while we read: store what was there
                remaining -= len(data)
                out.write(data)
                if len(sink.buf) >= chunk_size:
                    yield sink.drain()

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
                arcname = _join([*parts, name])
                if not _zip_safe_name(arcname):
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
            relpath = _join([*real, filename])
            try:
                st = os.stat(filename, dir_fd=dir_fd, follow_symlinks=False)
            except FileNotFoundError:
                pass
            else:
                if stat.S_ISDIR(st.st_mode):
                    raise Conflict(f"{relpath!r} is a folder", field="files")
                if not overwrite:
                    raise _exists(relpath)
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


def _set_level(info: zipfile.ZipInfo, level: int) -> None:
    # a ZipInfo we build ourselves does not inherit the ZipFile's level; the attribute
    # is public (compress_level) from Python 3.13, private before
    if hasattr(info, "compress_level"):
        info.compress_level = level
    else:
        info._compresslevel = level  # type: ignore[attr-defined]


def _zip_safe_name(arcname: str) -> bool:
    # zipfile cannot encode lone surrogates; a backslash is a separator to Windows
    # unzippers, so 'a\\..\\..\\x' could land outside the user's extraction folder
    if "\\" in arcname:
        return False
    try:
        arcname.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
