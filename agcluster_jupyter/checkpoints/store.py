"""The checkpoint store: snapshots of a workspace as git trees in a dulwich object store.

Why dulwich and not ``git`` on the workspace: we walk the workspace ourselves, so nothing
in it steers what is recorded.  A ``.gitignore`` cannot hide a file, a nested ``.git``
is recorded as plain files (git would record a gitlink and none of its content),
``.gitattributes`` filters and hooks never run, and no command runs on the agent's
folder.  Dulwich gives the kept parts: content-addressed, zlib-compressed loose objects,
git's tree format (modes for files, executables and symlinks), and ids any git can read.

The walk is hostile-input safe the same way the workspace's file API is: it goes down
from an ``O_DIRECTORY`` fd with ``O_NOFOLLOW`` at every step, never follows a symlink
(a link is stored as a link: its target, mode 120000), opens files ``O_NONBLOCK`` and
keeps only regular files (FIFOs, sockets and devices are skipped).

The cost does not grow with what did not change: an index (path → inode, size, mtime,
ctime, blob id) lets an unchanged file reuse its blob without being read, as git's
index does; a file changed within :data:`RACY_NS` of the snapshot is re-read anyway
(its mtime cannot tell a second write in the same tick).  Files from
:data:`CHUNKED_FILE_BYTES` up are stored as :data:`CHUNK_BYTES` chunks under a manifest
blob, so a small change to a 1 GiB file stores one chunk, not the file again.

Deduplicated across sessions too: with a ``pool`` (one folder per server state, next to
the sessions), every object a store writes is hard-linked into the pool by its id, and
an object the pool already holds is linked from there instead of written again.  A fork
of a session with a 1 GiB dataset, or two sessions given the same data, hold it once on
disk.  The link count is the reference count: a store drops its own link when it prunes
an object (or the session is purged, :meth:`SnapshotStore.destroy`), and a pool entry
whose last store link is gone is removed with it.  Each store still counts its objects'
bytes as its own for ``checkpoint_max_bytes`` (what the session would use alone).  A
pool on another filesystem (no hard links) costs only the sharing.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import stat
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dulwich.errors import ChecksumMismatch, ObjectFormatException
from dulwich.object_store import DiskObjectStore
from dulwich.objects import Blob, ObjectID, Tree

from ..errors import Conflict

__all__ = [
    "CHUNKED_FILE_BYTES",
    "CHUNK_BYTES",
    "MODE_EXEC",
    "MODE_FILE",
    "MODE_LINK",
    "RACY_NS",
    "Entry",
    "SnapshotStore",
]

MODE_FILE = 0o100644
MODE_EXEC = 0o100755
MODE_LINK = 0o120000
MODE_TREE = 0o040000

#: files this big or bigger are stored in chunks
CHUNKED_FILE_BYTES = 4 * 1024 * 1024
CHUNK_BYTES = 512 * 1024
#: a blob that starts with this is a chunk manifest; any file that starts with it is
#: stored chunked whatever its size, so a file can never pass for a manifest
MANIFEST_MAGIC = b"agcluster-chunked-file v1\n"
#: files modified this close to a snapshot are re-read (same-tick writes)
RACY_NS = 2_000_000_000
#: deeper folders are not recorded (as in the workspace tree)
MAX_DEPTH = 64


@dataclass(frozen=True)
class Entry:
    """One recorded file: its git mode, blob id and size (a link's size: its target's)."""

    mode: int
    sha: bytes
    size: int

    @property
    def is_link(self) -> bool:
        return self.mode == MODE_LINK


class SnapshotStore:
    """A workspace's snapshots: ``snapshot()`` → a tree id; ``files(tree)`` → its entries.

    Blocking (the caller runs it in an executor); not safe for two threads at once.
    """

    def __init__(
        self,
        store_dir: Path,
        workspace: Path,
        pool: Path | None = None,
        *,
        reachable_by_agent: bool = False,
    ) -> None:
        self.store_dir = store_dir
        self.workspace = workspace
        self.pool = pool
        #: the agent's uid could write here (a pod runs runner and CLI as one uid)
        self.reachable_by_agent = reachable_by_agent
        if pool is not None:  # the objects of every session: the server's alone
            pool.mkdir(parents=True, exist_ok=True, mode=0o700)
        objects = store_dir / "objects"
        if not objects.is_dir():
            store_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            DiskObjectStore.init(objects)
        # level 1: big, incompressible data (models, arrays) is not worth level 6's time
        self.objects = DiskObjectStore(objects, loose_compression_level=1)
        self._objects_dir = objects
        self._index_path = store_dir / "index.json"
        self._index: dict[str, list[Any]] = self._load_json(self._index_path)
        #: blob id → the size of the file it records (trees hold no sizes; reading every
        #: blob to learn them would cost what the index saves)
        self._sizes_path = store_dir / "sizes.json"
        self._sizes: dict[str, int] = self._load_json(self._sizes_path)
        self._files_cache: dict[bytes, dict[str, Entry]] = {}
        #: the objects' bytes on disk, counted once, then kept up to date
        self._bytes: int | None = None

    # -- snapshot ------------------------------------------------------------------------

    def snapshot(self) -> bytes:
        """Record the workspace as it is now; returns its tree id (hex, as bytes)."""
        started = time.time_ns()
        seen: dict[str, list[Any]] = {}
        try:
            root = os.open(self.workspace, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return self._add_tree(Tree())
        try:
            tree = self._snapshot_dir(root, "", 0, started, seen)
        finally:
            os.close(root)
        self._index = seen
        self._save_index()
        return tree

    def _snapshot_dir(
        self, fd: int, prefix: str, depth: int, started: int, seen: dict[str, list[Any]]
    ) -> bytes:
        tree = Tree()
        with os.scandir(fd) as entries:
            names = sorted(e.name for e in entries)
        for name in names:
            path = f"{prefix}{name}"
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                continue  # gone while we walked
            raw = os.fsencode(name)
            if stat.S_ISLNK(st.st_mode):
                try:
                    target = os.readlink(name, dir_fd=fd)
                except OSError:
                    continue
                link = os.fsencode(target)
                link_sha = self._add_blob(link)
                self._sizes[link_sha.decode()] = len(link)
                tree.add(raw, MODE_LINK, ObjectID(link_sha))
            elif stat.S_ISDIR(st.st_mode):
                if depth + 1 >= MAX_DEPTH:
                    continue
                try:
                    sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
                except OSError:
                    continue  # swapped for a link or removed since the stat
                try:
                    tree.add(
                        raw,
                        MODE_TREE,
                        ObjectID(self._snapshot_dir(sub, path + "/", depth + 1, started, seen)),
                    )
                finally:
                    os.close(sub)
            elif stat.S_ISREG(st.st_mode):
                mode = MODE_EXEC if st.st_mode & 0o111 else MODE_FILE
                sha = self._file_blob(fd, name, path, st, started, seen)
                if sha is not None:
                    tree.add(raw, mode, ObjectID(sha))
        return self._add_tree(tree)

    def _file_blob(
        self,
        fd: int,
        name: str,
        path: str,
        st: os.stat_result,
        started: int,
        seen: dict[str, list[Any]],
    ) -> bytes | None:
        key = [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
        known = self._index.get(path)
        # (garbage collection drops the index entries whose blobs it removed)
        if known is not None and known[:4] == key and started - st.st_mtime_ns > RACY_NS:
            seen[path] = known
            return str(known[4]).encode()
        try:
            file_fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fd)
        except OSError:
            return None
        try:
            if not stat.S_ISREG(os.fstat(file_fd).st_mode):
                return None  # swapped for something else since the stat
            with os.fdopen(file_fd, "rb", closefd=False) as handle:
                sha, size = self._store_file(handle, st.st_size)
            self._sizes[sha.decode()] = size
        finally:
            os.close(file_fd)
        seen[path] = [*key, sha.decode()]
        return sha

    def _store_file(self, handle: Any, size: int) -> tuple[bytes, int]:
        """The file's blob id and its size as read."""
        if size < CHUNKED_FILE_BYTES:
            data = handle.read(CHUNKED_FILE_BYTES + 1)  # it may have grown since the stat
            if len(data) <= CHUNKED_FILE_BYTES and not data.startswith(MANIFEST_MAGIC):
                return self._add_blob(data), len(data)
            handle.seek(0)
        chunks: list[str] = []
        total = 0
        while True:
            chunk = handle.read(CHUNK_BYTES)
            if not chunk:
                break
            total += len(chunk)
            chunks.append(self._add_blob(chunk).decode())
        manifest = MANIFEST_MAGIC + json.dumps({"size": total, "chunks": chunks}).encode()
        return self._add_blob(manifest), total

    def _has(self, sha: bytes) -> bool:
        # a stat of the loose object's file: dulwich's ``in`` reads the whole object
        name = sha.decode()
        return os.path.exists(os.path.join(self._objects_dir, name[:2], name[2:]))

    def _add_blob(self, data: bytes) -> bytes:
        blob = Blob.from_string(data)
        sha: bytes = blob.id
        if not self._has(sha):
            self._add(blob, sha)
        return sha

    def _add_tree(self, tree: Tree) -> bytes:
        sha: bytes = tree.id
        if not self._has(sha):
            self._add(tree, sha)
        return sha

    def add_object(self, obj: Blob | Tree) -> bytes:
        """An object made elsewhere (a snapshot stream, ``transfer.py``); its id."""
        sha: bytes = obj.id
        if not self._has(sha):
            self._add(obj, sha)
        return sha

    def _add(self, obj: Blob | Tree, sha: bytes) -> None:
        name = sha.decode()
        path = os.path.join(self._objects_dir, name[:2], name[2:])
        if not self._link_from_pool(name, path):
            self.objects.add_object(obj)
            self._link_to_pool(name, path)
        if self._bytes is not None:
            self._bytes += os.stat(path).st_size

    def _pool_path(self, name: str) -> str | None:
        return None if self.pool is None else os.path.join(self.pool, name[:2], name[2:])

    def _link_from_pool(self, name: str, path: str) -> bool:
        """The pool's copy of object ``name`` linked in as ours; False: write it."""
        shared = self._pool_path(name)
        if shared is None:
            return False
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            os.link(shared, path)
        except FileExistsError:
            return True
        except OSError:  # not pooled (yet), or gone meanwhile, or another filesystem
            return False
        return True

    def _link_to_pool(self, name: str, path: str) -> None:
        shared = self._pool_path(name)
        if shared is None:
            return
        with contextlib.suppress(OSError):  # pooled already, or no hard links there
            os.makedirs(os.path.dirname(shared), mode=0o700, exist_ok=True)
            os.link(path, shared)

    def _unlink(self, path: Path, name: str) -> int:
        """Drop our link to an object (and the pool's, when ours was its last); bytes."""
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            return 0
        shared = self._pool_path(name)
        if shared is not None:
            with contextlib.suppress(OSError):
                if os.stat(shared).st_nlink <= 1:
                    os.unlink(shared)
        return size

    def destroy(self) -> None:
        """Every object released (the pool keeps what other stores still link), then the
        store's folder removed: a purged session's part of the pool goes with it."""
        for dirpath, _, filenames in os.walk(self._objects_dir):
            fan = os.path.basename(dirpath)
            for filename in filenames:
                if len(fan) == 2 and len(filename) == 38:
                    self._unlink(Path(dirpath) / filename, fan + filename)
        shutil.rmtree(self.store_dir, ignore_errors=True)

    # -- reading -------------------------------------------------------------------------

    def files(self, tree_id: bytes) -> dict[str, Entry]:
        """Every file and link of a snapshot, by workspace-relative path."""
        cached = self._files_cache.get(tree_id)
        if cached is not None:
            return dict(cached)
        out: dict[str, Entry] = {}
        for path, mode, sha in self._walk(tree_id, ""):
            out[path] = Entry(mode, sha, self._size(sha, mode))
        if len(self._files_cache) >= 8:  # snapshots never change: keep the last few
            self._files_cache.pop(next(iter(self._files_cache)))
        self._files_cache[tree_id] = out
        return dict(out)

    def _walk(self, tree_id: bytes, prefix: str) -> Iterator[tuple[str, int, bytes]]:
        tree = self._object(tree_id)
        assert isinstance(tree, Tree)
        for item in tree.iteritems():
            path = prefix + os.fsdecode(item.path)
            if item.mode == MODE_TREE:
                yield from self._walk(item.sha, path + "/")
            else:
                yield path, item.mode, item.sha

    def _size(self, sha: bytes, mode: int) -> int:
        known = self._sizes.get(sha.decode())
        if known is not None:
            return known
        data = self._raw(sha)
        if mode != MODE_LINK and data.startswith(MANIFEST_MAGIC):
            return int(json.loads(data[len(MANIFEST_MAGIC) :])["size"])
        return len(data)

    def _raw(self, sha: bytes) -> bytes:
        blob = self._object(sha)
        assert isinstance(blob, Blob)
        return bytes(blob.as_raw_string())

    def _object(self, sha: bytes) -> Blob | Tree:
        """An object, checked against its id (dulwich hashes what it reads): a store the
        agent could reach (one pod, one uid, on kubernetes) can lose objects but never
        pass off other content."""
        name = sha.decode()
        try:
            obj = self.objects[ObjectID(sha)]
        except KeyError:
            raise Conflict(
                f"the checkpoint store lost object {name}; this checkpoint cannot be read"
            ) from None
        except ChecksumMismatch:
            raise Conflict(
                f"the checkpoint store is damaged: object {name} does not hold what its id "
                "says; this checkpoint cannot be read"
            ) from None
        except (ObjectFormatException, zlib.error, ValueError) as exc:
            raise Conflict(
                f"the checkpoint store is damaged: object {name} is unreadable ({exc})"
            ) from None
        if not isinstance(obj, (Blob, Tree)):
            raise Conflict(f"the checkpoint store is damaged: object {name} is no file or folder")
        return obj

    def read(self, entry: Entry, limit: int | None = None) -> bytes:
        """A recorded file's bytes (a link: its target), at most ``limit`` of them."""
        data = self._raw(entry.sha)
        if entry.is_link or not data.startswith(MANIFEST_MAGIC):
            return data if limit is None else data[:limit]
        return b"".join(self.iter_chunks(entry, limit))

    def check(self, entries: Iterable[Entry]) -> None:
        """Every object these entries need is there (and, in a store the agent can reach,
        holds what its id says): a restore calls it before it writes anything, so a
        damaged store is a 409, not half a restore.  A store out of the agent's reach is
        only checked for lost objects here (reading 1 GiB twice would double a restore);
        every read is checked against its id anyway."""
        for entry in entries:
            if self.reachable_by_agent:
                for _ in self.iter_chunks(entry):
                    pass
                continue
            needed = [entry.sha]
            if not entry.is_link and entry.size >= CHUNKED_FILE_BYTES:  # its manifest
                data = self._raw(entry.sha)
                if data.startswith(MANIFEST_MAGIC):
                    chunks = json.loads(data[len(MANIFEST_MAGIC) :])["chunks"]
                    needed += [str(c).encode() for c in chunks]
            for sha in needed:
                if not self._has(sha):
                    raise Conflict(
                        f"the checkpoint store lost object {sha.decode()}; this checkpoint "
                        "cannot be restored"
                    )

    def iter_chunks(self, entry: Entry, limit: int | None = None) -> Iterator[bytes]:
        data = self._raw(entry.sha)
        if entry.is_link or not data.startswith(MANIFEST_MAGIC):
            yield data if limit is None else data[:limit]
            return
        left = limit
        for chunk_id in json.loads(data[len(MANIFEST_MAGIC) :])["chunks"]:
            chunk = self._raw(str(chunk_id).encode())
            if left is not None:
                chunk = chunk[:left]
                left -= len(chunk)
            yield chunk
            if left is not None and left <= 0:
                return

    # -- size and pruning ----------------------------------------------------------------

    def reachable(self, trees: list[bytes]) -> set[bytes]:
        """Every object the given snapshots need (trees, blobs, chunks)."""
        keep: set[bytes] = set()
        stack = list(trees)
        while stack:
            sha = stack.pop()
            if sha in keep:
                continue
            keep.add(sha)
            obj = self.objects[ObjectID(sha)]
            if isinstance(obj, Tree):
                stack.extend(item.sha for item in obj.iteritems())
            elif isinstance(obj, Blob):
                data = bytes(obj.as_raw_string())
                if data.startswith(MANIFEST_MAGIC):
                    chunks = json.loads(data[len(MANIFEST_MAGIC) :])["chunks"]
                    keep.update(str(c).encode() for c in chunks)
        return keep

    def collect_garbage(self, keep_trees: list[bytes]) -> int:
        """Delete the loose objects no kept snapshot needs; returns the bytes freed."""
        keep = self.reachable(keep_trees)
        freed = 0
        for sha in list(self.objects._iter_loose_objects()):
            if sha in keep:
                continue
            freed += self._unlink(Path(self.objects._get_shafile_path(sha)), sha.decode())
        if self._bytes is not None:
            self._bytes -= freed
        # the index may name blobs that are gone now: it only speeds up, so drop those
        self._index = {p: v for p, v in self._index.items() if v[4].encode() in keep}
        self._sizes = {k: v for k, v in self._sizes.items() if k.encode() in keep}
        self._files_cache.clear()
        self._save_index()
        return freed

    def size_bytes(self) -> int:
        """The objects' bytes on disk (what ``checkpoint_max_bytes`` bounds)."""
        if self._bytes is None:
            self._bytes = self._count_bytes()
        return self._bytes

    def _count_bytes(self) -> int:
        total = 0
        for dirpath, _, filenames in os.walk(self.store_dir / "objects"):
            for name in filenames:
                with contextlib.suppress(FileNotFoundError):
                    total += os.lstat(os.path.join(dirpath, name)).st_size
        return total

    # -- the index -----------------------------------------------------------------------

    @staticmethod
    def _load_json(path: Path) -> dict[str, Any]:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _save_index(self) -> None:
        for path, data in ((self._index_path, self._index), (self._sizes_path, self._sizes)):
            tmp = path.with_suffix(".tmp")
            try:
                tmp.write_text(json.dumps(data, separators=(",", ":")), encoding="utf-8")
                os.replace(tmp, path)
            except OSError as exc:  # both only speed up: a lost one costs a re-read
                if exc.errno != errno.ENOSPC:
                    raise
