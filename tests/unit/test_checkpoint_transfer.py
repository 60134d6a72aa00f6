"""Snapshot streams between checkpoint stores (a remote fork, a remote compare): what
arrives is exactly the snapshot its tree id names, or a 400 and nothing."""

from __future__ import annotations

import io
import os
import tarfile
import zlib
from pathlib import Path

import pytest

from agcluster_jupyter.checkpoints import CheckpointHistory
from agcluster_jupyter.checkpoints.async_local import seed_workspace
from agcluster_jupyter.checkpoints.store import CHUNKED_FILE_BYTES, SnapshotStore
from agcluster_jupyter.checkpoints.transfer import read_objects, write_objects
from agcluster_jupyter.errors import BadRequest, Conflict


@pytest.fixture
def source(tmp_path: Path) -> tuple[SnapshotStore, bytes]:
    ws = tmp_path / "ws"
    (ws / "src").mkdir(parents=True)
    (ws / "src" / "app.py").write_text("print('hi')\n")
    (ws / "run.sh").write_text("#!/bin/sh\n")
    (ws / "run.sh").chmod(0o755)
    (ws / "big.bin").write_bytes(os.urandom(CHUNKED_FILE_BYTES + 12345))
    os.symlink("/etc/passwd", ws / "leak")
    store = SnapshotStore(tmp_path / "a", ws)
    return store, store.snapshot()


def _stream(store: SnapshotStore, tree: bytes) -> io.BytesIO:
    out = io.BytesIO()
    write_objects(store, tree, out)
    out.seek(0)
    return out


def test_a_snapshot_arrives_whole_and_seeds_a_workspace(
    source: tuple[SnapshotStore, bytes], tmp_path: Path
) -> None:
    store, tree = source
    target = tmp_path / "child"
    target.mkdir()
    history = CheckpointHistory(tmp_path / "b", target, max_bytes=1 << 30)
    assert seed_workspace(history, _stream(store, tree)) == 4
    assert (target / "src" / "app.py").read_text() == "print('hi')\n"
    assert os.access(target / "run.sh", os.X_OK)
    assert os.readlink(target / "leak") == "/etc/passwd"  # a link, never followed
    assert (target / "big.bin").read_bytes() == (store.workspace / "big.bin").read_bytes()
    assert history.store.files(tree) == store.files(tree)


def test_a_changed_object_is_refused(source: tuple[SnapshotStore, bytes], tmp_path: Path) -> None:
    store, tree = source
    tampered = io.BytesIO()
    with (
        tarfile.open(fileobj=_stream(store, tree), mode="r|") as original,
        tarfile.open(fileobj=tampered, mode="w|") as out,
    ):
        for member in original:
            handle = original.extractfile(member)
            assert handle is not None
            data = handle.read()
            if member.name != "TREE" and b"print('hi')" in data:
                data = data.replace(b"print('hi')", b"print('EV')")
            member.size = len(data)
            out.addfile(member, io.BytesIO(data))
    tampered.seek(0)
    with pytest.raises(BadRequest, match="does not match its id"):
        read_objects(SnapshotStore(tmp_path / "c", tmp_path / "none"), tampered)


def test_a_stream_missing_an_object_or_not_a_tar_is_refused(
    source: tuple[SnapshotStore, bytes], tmp_path: Path
) -> None:
    store, tree = source
    short = io.BytesIO()
    with (
        tarfile.open(fileobj=_stream(store, tree), mode="r|") as original,
        tarfile.open(fileobj=short, mode="w|") as out,
    ):
        for n, member in enumerate(original):
            handle = original.extractfile(member)
            assert handle is not None
            if n != 2:
                out.addfile(member, io.BytesIO(handle.read()))
    short.seek(0)
    with pytest.raises(BadRequest, match="lacks objects"):
        read_objects(SnapshotStore(tmp_path / "d", tmp_path / "none"), short)
    with pytest.raises(BadRequest, match="not a tar stream"):
        read_objects(SnapshotStore(tmp_path / "e", tmp_path / "none"), io.BytesIO(b"junk" * 200))


def _turn_that_deleted_a_file(tmp_path: Path) -> tuple[Path, CheckpointHistory]:
    """Turn 1 changed a.txt and deleted b.txt."""
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "a.txt").write_text("first\n")
    (ws / "b.txt").write_text("precious\n")
    history = CheckpointHistory(tmp_path / "st", ws, max_bytes=1 << 30)
    history.begin_turn(1, "go")
    (ws / "a.txt").write_text("changed\n")
    (ws / "b.txt").unlink()
    history.end_turn(1)
    return ws, history


def test_a_damaged_store_is_a_409_before_anything_is_restored(tmp_path: Path) -> None:
    ws, history = _turn_that_deleted_a_file(tmp_path)
    sha = history.store.files(history.store.snapshot())["a.txt"].sha  # unrelated
    # a store the agent's uid can write (a pod): every object is read, checked, first
    before = CheckpointHistory(tmp_path / "st", ws, max_bytes=1 << 30, reachable_by_agent=True)
    entry = before._files(before._require(1)["before"])["b.txt"]
    path = tmp_path / "st" / "objects" / entry.sha.decode()[:2] / entry.sha.decode()[2:]
    path.chmod(0o600)
    path.write_bytes(zlib.compress(b"blob 9\0evil!!!\n\n"))
    with pytest.raises(Conflict, match="damaged"):
        before.restore(1)
    assert (ws / "a.txt").read_text() == "changed\n"  # a.txt (fine) was not written either
    assert not (ws / "b.txt").exists() and sha
    with pytest.raises(Conflict, match="nothing to undo|no restore"):
        before.undo()


def _inodes(folder: Path) -> set[int]:
    return {p.stat().st_ino for p in folder.rglob("*") if p.is_file()}


def test_sessions_sharing_data_hold_it_once(tmp_path: Path) -> None:
    data = os.urandom(CHUNKED_FILE_BYTES * 2)
    pool = tmp_path / "pool"
    histories = []
    for name in ("a", "b"):
        ws = tmp_path / f"ws-{name}"
        ws.mkdir()
        (ws / "dataset.bin").write_bytes(data)
        (ws / f"{name}.txt").write_text(f"only in {name}\n")
        history = CheckpointHistory(tmp_path / name, ws, max_bytes=1 << 30, pool=pool)
        history.begin_turn(1, "go")
        histories.append(history)
    a, b = histories
    a_objects, b_objects = tmp_path / "a" / "objects", tmp_path / "b" / "objects"
    shared = _inodes(a_objects) & _inodes(b_objects)
    # the dataset's chunks and manifest are one inode each, in both stores and the pool
    assert len(shared) >= 2 * CHUNKED_FILE_BYTES // (512 * 1024)
    assert _inodes(pool) == _inodes(a_objects) | _inodes(b_objects)
    assert oct(pool.stat().st_mode & 0o777) == "0o700"

    a.store.destroy()  # a purged session: its own objects leave the pool, shared ones stay
    assert not (tmp_path / "a").exists()
    assert _inodes(pool) == _inodes(b_objects)
    (b.workspace / "dataset.bin").unlink()
    assert b.restore(1) == ["dataset.bin"]
    assert (b.workspace / "dataset.bin").read_bytes() == data
    b.store.destroy()
    assert _inodes(pool) == set()


def test_a_lost_object_is_a_409_before_anything_is_restored(tmp_path: Path) -> None:
    ws, history = _turn_that_deleted_a_file(tmp_path)
    entry = history._files(history._require(1)["before"])["b.txt"]
    (tmp_path / "st" / "objects" / entry.sha.decode()[:2] / entry.sha.decode()[2:]).unlink()
    with pytest.raises(Conflict, match="lost object"):
        history.restore(1)
    assert (ws / "a.txt").read_text() == "changed\n"
