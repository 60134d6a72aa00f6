"""The checkpoint store, diffs, restore and undo, on real folders (no agent)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest

from agcluster_jupyter.checkpoints import CheckpointHistory
from agcluster_jupyter.checkpoints.restore import TMP_PREFIX
from agcluster_jupyter.checkpoints.store import CHUNK_BYTES, SnapshotStore
from agcluster_jupyter.errors import BadRequest, Conflict, NotFound


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / "src").mkdir(parents=True)
    (root / "src" / "app.py").write_text("a\nb\nc\n")
    (root / "notes.txt").write_text("keep me\n")
    return root


@pytest.fixture
def history(tmp_path: Path, ws: Path) -> CheckpointHistory:
    return CheckpointHistory(tmp_path / "state" / "checkpoints", ws, max_bytes=64 * 1024 * 1024)


def test_a_turn_is_summarised_and_diffed(history: CheckpointHistory, ws: Path) -> None:
    history.begin_turn(1, "  delete notes, extend app  ")
    (ws / "notes.txt").unlink()
    (ws / "src" / "app.py").write_text("a\nb\nc\nd\ne\n")
    (ws / "new.md").write_text("# new\n")
    summary = history.end_turn(1)
    assert summary == {
        "files_changed": 3,
        "added": 1,
        "modified": 1,
        "deleted": 1,
        "lines_added": 3,
        "lines_removed": 1,
    }
    listed = history.listing()
    assert listed["total"] == 1
    (item,) = listed["checkpoints"]
    assert item["turn"] == 1 and item["prompt"] == "delete notes, extend app"
    assert item["files_changed"] == 3 and item["finished"] is True
    diff = history.diff(1)
    by_path = {f["path"]: f for f in diff["files"]}
    assert {p: f["status"] for p, f in by_path.items()} == {
        "new.md": "added",
        "notes.txt": "deleted",
        "src/app.py": "modified",
    }
    assert "+d\n+e\n" in by_path["src/app.py"]["diff"]
    assert by_path["notes.txt"]["size_before"] == 8 and by_path["notes.txt"]["size_after"] is None
    one = history.diff(1, path="src")
    assert [f["path"] for f in one["files"]] == ["src/app.py"]


def test_restore_brings_back_what_a_turn_removed_and_undo_reverses_it(
    history: CheckpointHistory, ws: Path
) -> None:
    history.begin_turn(1, "t1")
    (ws / "notes.txt").unlink()
    with (ws / "src" / "app.py").open("a") as f:
        f.write("appended\n")
    history.end_turn(1)
    history.begin_turn(2, "t2")
    (ws / "later.txt").write_text("turn 2\n")
    history.end_turn(2)

    restored = history.restore(1)
    assert restored == ["later.txt", "notes.txt", "src/app.py"]
    assert (ws / "notes.txt").read_text() == "keep me\n"
    assert (ws / "src" / "app.py").read_text() == "a\nb\nc\n"
    assert not (ws / "later.txt").exists()
    assert not [p for p in ws.rglob("*") if p.name.startswith(TMP_PREFIX)]

    assert history.undo() == ["later.txt", "notes.txt", "src/app.py"]
    assert not (ws / "notes.txt").exists()
    assert (ws / "src" / "app.py").read_text() == "a\nb\nc\nappended\n"
    assert (ws / "later.txt").read_text() == "turn 2\n"
    with pytest.raises(Conflict, match="nothing|no restore"):
        history.undo()


def test_restore_of_some_paths_only(history: CheckpointHistory, ws: Path) -> None:
    history.begin_turn(1, "t1")
    (ws / "notes.txt").write_text("changed\n")
    (ws / "src" / "app.py").write_text("changed\n")
    history.end_turn(1)
    assert history.restore(1, ["src/"]) == ["src/app.py"]
    assert (ws / "src" / "app.py").read_text() == "a\nb\nc\n"
    assert (ws / "notes.txt").read_text() == "changed\n"
    with pytest.raises(NotFound, match="nope.txt"):
        history.restore(1, ["nope.txt"])


@pytest.mark.parametrize("bad", ["../etc/passwd", "/etc/passwd", "src/../../x", "a\x00b", ""])
def test_hostile_restore_paths_are_a_400(history: CheckpointHistory, bad: str) -> None:
    history.begin_turn(1, "t")
    history.end_turn(1)
    with pytest.raises(BadRequest):
        history.restore(1, [bad])
    with pytest.raises(BadRequest):
        history.diff(1, path=bad)


def test_symlinks_are_stored_and_restored_as_links_never_followed(
    history: CheckpointHistory, ws: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("host secret")
    os.symlink("/etc", ws / "etc-link")
    history.begin_turn(1, "t")
    (ws / "etc-link").unlink()
    history.end_turn(1)
    files = history.store.files(history.store.snapshot())
    assert "etc-link" not in files
    before = {f["path"]: f for f in history.diff(1)["files"]}
    assert before["etc-link"]["link"] is True and before["etc-link"]["status"] == "deleted"
    assert "passwd" not in json.dumps(history.diff(1))  # the link's target was never read

    # the agent swaps src/ for a link out; the restore must not write through it
    history.begin_turn(2, "t")
    (ws / "src" / "app.py").unlink()
    (ws / "src").rmdir()
    os.symlink(outside, ws / "src")
    history.end_turn(2)
    history.restore(1)
    assert os.readlink(ws / "etc-link") == "/etc"
    assert (ws / "src").is_dir() and not (ws / "src").is_symlink()
    assert (ws / "src" / "app.py").read_text() == "a\nb\nc\n"
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]


def test_a_big_binary_file_is_not_diffed_as_text(history: CheckpointHistory, ws: Path) -> None:
    history.begin_turn(1, "t")
    (ws / "data.bin").write_bytes(os.urandom(3 * 1024 * 1024))
    (ws / "nul.txt").write_bytes(b"text\0with a NUL\n")
    history.end_turn(1)
    files = {f["path"]: f for f in history.diff(1)["files"]}
    assert files["data.bin"]["binary"] is True and "diff" not in files["data.bin"]
    assert files["data.bin"]["size_after"] == 3 * 1024 * 1024
    assert files["nul.txt"]["binary"] is True


def test_a_small_change_to_a_big_file_stores_one_chunk(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    big = ws / "big.bin"
    big.write_bytes(os.urandom(16 * 1024 * 1024))
    store = SnapshotStore(tmp_path / "store", ws)
    first = store.snapshot()
    size = store.size_bytes()
    with big.open("r+b") as f:
        f.seek(5 * 1024 * 1024 + 7)
        f.write(b"changed")
    second = store.snapshot()
    growth = store.size_bytes() - size
    assert first != second
    assert growth < 2 * CHUNK_BYTES, growth
    assert store.size_bytes() == store._count_bytes()  # the running total is right
    entry = store.files(second)["big.bin"]
    assert store.read(entry) == big.read_bytes()


def test_unchanged_files_are_not_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    for n in range(50):
        (ws / f"f{n}.txt").write_text(f"file {n}\n")
    old = 1_600_000_000
    for p in ws.iterdir():
        os.utime(p, (old, old))  # well before the snapshot: not racy
    store = SnapshotStore(tmp_path / "store", ws)
    first = store.snapshot()
    opened: list[str] = []
    real_open = os.open

    def counting_open(path: str, *args: object, **kwargs: object) -> int:
        opened.append(str(path))
        return real_open(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", counting_open)
    (ws / "f3.txt").write_text("changed\n")
    second = store.snapshot()
    assert [p for p in opened if p.endswith(".txt")] == ["f3.txt"]
    assert first != second


def test_a_store_over_its_bound_prunes_the_oldest_and_says_so(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    history = CheckpointHistory(tmp_path / "store", ws, max_bytes=3 * 1024 * 1024)
    for turn in range(1, 6):
        history.begin_turn(turn, f"t{turn}")
        (ws / f"blob{turn}.bin").write_bytes(os.urandom(1024 * 1024))
        if turn > 1:
            (ws / f"blob{turn - 1}.bin").unlink()
        history.end_turn(turn)
    listed = history.listing()
    kept = [c["turn"] for c in listed["checkpoints"]]
    assert kept[-1] == 5 and kept[0] > 1
    assert listed["pruned_before"] == kept[0]
    assert history.store.size_bytes() <= 3 * 1024 * 1024
    with pytest.raises(NotFound, match="pruned"):
        history.diff(1)
    history.restore(kept[0])  # what is kept restores whole
    assert sorted(p.name for p in ws.iterdir()) == [f"blob{kept[0] - 1}.bin"]


def test_notebooks_are_diffed_by_cell(history: CheckpointHistory, ws: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("x = 1", id="c1"),
        nbformat.v4.new_markdown_cell("# Title", id="c2"),
        nbformat.v4.new_code_cell("print(x)", id="c3"),
    ]
    nbformat.write(nb, ws / "analysis.ipynb")
    history.begin_turn(1, "t")
    nb.cells[0].source = "x = 2"
    del nb.cells[1]
    nb.cells.append(nbformat.v4.new_code_cell("y = x * 2", id="c4"))
    nbformat.write(nb, ws / "analysis.ipynb")
    history.end_turn(1)
    (item,) = history.diff(1)["files"]
    assert "diff" not in item
    cells = item["cells"]
    statuses = sorted((c["status"], c.get("source") or c.get("diff", "")) for c in cells)
    assert ("added", "y = x * 2") in statuses
    assert ("deleted", "# Title") in statuses
    modified = next(c for c in cells if c["status"] == "modified")
    assert modified["index_before"] == 0 and "source" in modified["changed"]
    assert "-x = 1" in modified["diff"] and "+x = 2" in modified["diff"]


def test_a_nested_git_repo_and_gitignore_do_not_hide_files(
    history: CheckpointHistory, ws: Path
) -> None:
    history.begin_turn(1, "t")
    (ws / ".gitignore").write_text("*\n")
    (ws / "vendored" / ".git").mkdir(parents=True)
    (ws / "vendored" / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (ws / "vendored" / "lib.py").write_text("x = 1\n")
    history.end_turn(1)
    paths = {f["path"] for f in history.diff(1)["files"]}
    assert paths == {".gitignore", "vendored/.git/HEAD", "vendored/lib.py"}
