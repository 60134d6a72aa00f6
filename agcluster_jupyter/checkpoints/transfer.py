"""A snapshot's objects as a tar stream, from one checkpoint store to another: how a fork
of a session whose workspace lives on its runner's volume (``kubernetes``, ``fly``)
carries the files to the new session's volume, and how two such workspaces are compared.

The stream is a plain ``tar``: a member ``TREE`` holding the snapshot's tree id (hex),
then one member per object, named by its id, holding git's type number as one ASCII
digit and the object's raw bytes.  Whoever reads a stream recomputes every object's id
from its content and refuses the stream when one does not match, so content-addressing
makes it tamper-evident: what arrives is exactly the snapshot the tree id names, or
nothing.  Objects the receiver already has are skipped (dedup across sessions that
share a store).
"""

from __future__ import annotations

import io
import re
import tarfile
from typing import IO

from dulwich.errors import ObjectFormatException
from dulwich.objects import Blob, Tree

from ..errors import BadRequest, Conflict
from .store import SnapshotStore

__all__ = ["read_objects", "write_objects"]

TREE_MEMBER = "TREE"
_TYPES: dict[int, type[Blob] | type[Tree]] = {Blob.type_num: Blob, Tree.type_num: Tree}
_SHA = re.compile(rb"^[0-9a-f]{40}$")


def write_objects(store: SnapshotStore, tree: bytes, out: IO[bytes]) -> int:
    """The objects snapshot ``tree`` needs, as a tar stream into ``out``; how many."""
    count = 0
    with tarfile.open(fileobj=out, mode="w|") as archive:
        _add(archive, TREE_MEMBER, tree)
        for sha in sorted(store.reachable([tree])):
            obj = store.objects[sha]  # type: ignore[index]
            _add(archive, sha.decode(), str(obj.type_num).encode() + obj.as_raw_string())
            count += 1
    return count


def _add(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o600
    archive.addfile(info, io.BytesIO(data))


def read_objects(store: SnapshotStore, stream: IO[bytes]) -> bytes:
    """Put a stream of :func:`write_objects` into ``store``; the snapshot's tree id.
    BadRequest for a stream that is not one, or an object whose id does not match."""
    tree: bytes | None = None
    try:
        with tarfile.open(fileobj=stream, mode="r|") as archive:
            for member in archive:
                handle = archive.extractfile(member) if member.isfile() else None
                if handle is None:
                    raise BadRequest(f"the snapshot stream holds a non-file {member.name!r}")
                data = handle.read()
                if member.name == TREE_MEMBER:
                    tree = data.strip()
                    continue
                _put(store, member.name, data)
    except tarfile.TarError as exc:
        raise BadRequest(f"the snapshot stream is not a tar stream: {exc}") from None
    if tree is None or not _SHA.match(tree):
        raise BadRequest("the snapshot stream names no tree")
    try:
        store.check(store.files(tree).values())  # every object of the snapshot arrived
    except Conflict as exc:  # the store's "lost object ..."
        raise BadRequest(f"the snapshot stream lacks objects: {exc.message}") from None
    return tree


def _put(store: SnapshotStore, name: str, data: bytes) -> None:
    kind = _TYPES.get(int(data[:1])) if data[:1].isdigit() else None
    if kind is None:
        raise BadRequest(f"object {name!r} in the snapshot stream has no known type")
    try:
        obj = kind.from_string(data[1:])
    except ObjectFormatException as exc:
        raise BadRequest(f"object {name!r} in the snapshot stream is malformed: {exc}") from None
    if obj.id.decode() != name:
        raise BadRequest(f"object {name!r} in the snapshot stream does not match its id")
    store.add_object(obj)
