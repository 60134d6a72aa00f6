"""The cost of a per-turn checkpoint, against ``cp -a`` of the same workspace.

For each workspace shape, in one process and on one disk:

- baseline: ``cp -a`` of the workspace to a fresh folder (the naive "checkpoint");
- first: the first checkpoint (everything is new to the store);
- per turn: ``--turns`` times, one small change (a line appended to one file), then a
  checkpoint; the median time and the store's growth per turn are reported;
- restore (the many-files shape): the workspace put back to the first checkpoint after
  ``--turns`` changes, whole;
- shared (the one-big-file shape): a second session given the same data (a fork, or the
  same dataset uploaded twice) takes its first checkpoint into the same object pool: the
  disk it adds (distinct inodes of both stores and the pool) against the data's size.

Shapes: ``small`` (100 files, 10 MB), ``many`` (10k files, 1 GiB; ``--many-mb`` to
scale it down), ``big`` (one 1 GiB file; ``--big-mb``).  File contents are random
(incompressible: the worst case for the store).  Results go to
``benchmarks/results/checkpoints.json``.

    python benchmarks/checkpoints.py                       # all three, full size
    python benchmarks/checkpoints.py --many-mb 200 --big-mb 200 --turns 5
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from agcluster_jupyter.checkpoints import CheckpointHistory

RESULTS = Path(__file__).resolve().parent / "results" / "checkpoints.json"
MIB = 1024 * 1024


def make_workspace(root: Path, files: int, total_bytes: int) -> list[Path]:
    """``files`` files of random bytes, ``total_bytes`` in all, 100 per folder."""
    each = max(1, total_bytes // files)
    paths = []
    for n in range(files):
        folder = root / f"d{n // 100:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"f{n:05d}.bin"
        with path.open("wb") as handle:
            left = each
            while left:
                block = os.urandom(min(left, 4 * MIB))
                handle.write(block)
                left -= len(block)
        paths.append(path)
    return paths


def cp_a(source: Path, scratch: Path) -> float:
    target = scratch / f"cp-{time.monotonic_ns()}"
    started = time.perf_counter()
    subprocess.run(["cp", "-a", str(source), str(target)], check=True)
    elapsed = time.perf_counter() - started
    shutil.rmtree(target)
    return elapsed


def measure(name: str, files: int, total_bytes: int, turns: int, scratch: Path) -> dict[str, Any]:
    workspace = scratch / f"ws-{name}"
    paths = make_workspace(workspace, files, total_bytes)
    os.sync()
    pool = scratch / f"pool-{name}"
    history = CheckpointHistory(scratch / f"store-{name}", workspace, max_bytes=1 << 62, pool=pool)
    baseline = [cp_a(workspace, scratch) for _ in range(3)]

    started = time.perf_counter()
    history.begin_turn(1, "first")
    first = time.perf_counter() - started
    history.end_turn(1)

    per_turn, turn_end, growth = [], [], []
    for turn in range(2, turns + 2):
        target = paths[(turn * 7919) % len(paths)]
        with target.open("r+b") as handle:  # one small change, in place, mid-file
            handle.seek(target.stat().st_size // 2)
            handle.write(f"turn {turn}\n".encode())
        before = history.store.size_bytes()
        started = time.perf_counter()
        history.begin_turn(turn, f"turn {turn}")
        per_turn.append(time.perf_counter() - started)
        growth.append(history.store.size_bytes() - before)
        started = time.perf_counter()
        history.end_turn(turn)  # the turn's own snapshot and its summary
        turn_end.append(time.perf_counter() - started)

    result: dict[str, Any] = {
        "files": files,
        "bytes": total_bytes,
        "cp_a_s": statistics.median(baseline),
        "first_checkpoint_s": first,
        "checkpoint_s": statistics.median(per_turn),
        "checkpoint_vs_cp_a": statistics.median(per_turn) / statistics.median(baseline),
        "turn_end_s": statistics.median(turn_end),
        "growth_per_turn_bytes": statistics.median(growth),
        "store_bytes": history.store.size_bytes(),
    }
    if name == "many":
        started = time.perf_counter()
        restored = history.restore(1)
        result["restore_s"] = time.perf_counter() - started
        result["restored_paths"] = len(restored)
        # the agent wiped the workspace: every file comes back
        for folder in workspace.iterdir():
            shutil.rmtree(folder)
        started = time.perf_counter()
        restored = history.restore(1)
        result["restore_all_s"] = time.perf_counter() - started
        result["restore_all_paths"] = len(restored)
    if name == "big":
        result.update(shared_session(workspace, scratch, pool, name))
    shutil.rmtree(workspace)
    return result


def disk_bytes(*folders: Path) -> int:
    """Bytes on disk of the files under ``folders``, each inode counted once."""
    seen: dict[int, int] = {}
    for folder in folders:
        for path in folder.rglob("*"):
            st = path.lstat()
            if path.is_file():
                seen[st.st_ino] = st.st_blocks * 512
    return sum(seen.values())


def shared_session(workspace: Path, scratch: Path, pool: Path, name: str) -> dict[str, Any]:
    """A second session on a copy of the same data, into the same pool."""
    twin = scratch / f"ws-{name}-twin"
    subprocess.run(["cp", "-a", str(workspace), str(twin)], check=True)
    stores = [scratch / f"store-{name}", pool]
    before = disk_bytes(*stores)
    history = CheckpointHistory(scratch / f"store-{name}-twin", twin, max_bytes=1 << 62, pool=pool)
    started = time.perf_counter()
    history.begin_turn(1, "first")
    elapsed = time.perf_counter() - started
    added = disk_bytes(*stores, scratch / f"store-{name}-twin") - before
    shutil.rmtree(twin)
    return {"shared_first_checkpoint_s": elapsed, "shared_added_disk_bytes": added}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--many-mb", type=int, default=1024)
    parser.add_argument("--big-mb", type=int, default=1024)
    parser.add_argument("--only", choices=("small", "many", "big"), action="append")
    parser.add_argument("--dir", type=Path, default=None, help="scratch folder (default: /var/tmp)")
    args = parser.parse_args(argv)
    shapes = {
        "small": (100, 10 * MIB),
        "many": (10_000, args.many_mb * MIB),
        "big": (1, args.big_mb * MIB),
    }
    out: dict[str, Any] = {
        "when": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "turns": args.turns,
        "shapes": {},
    }
    with tempfile.TemporaryDirectory(dir=args.dir or "/var/tmp", prefix="agc-bench-") as tmp:
        for name in args.only or list(shapes):
            files, size = shapes[name]
            result = measure(name, files, size, args.turns, Path(tmp))
            out["shapes"][name] = result
            print(
                f"{name:>5}: {files} files, {size / MIB:.0f} MiB: cp -a {result['cp_a_s']:.3f} s; "
                f"first checkpoint {result['first_checkpoint_s']:.3f} s; per turn "
                f"{result['checkpoint_s'] * 1000:.1f} ms ({result['checkpoint_vs_cp_a']:.1%} of "
                f"cp -a), +{result['growth_per_turn_bytes'] / 1024:.0f} KiB"
                + f"; turn end {result['turn_end_s'] * 1000:.1f} ms"
                + (
                    f"; a second session on the same data: first checkpoint "
                    f"{result['shared_first_checkpoint_s']:.2f} s, "
                    f"+{result['shared_added_disk_bytes'] / 1024:.0f} KiB on disk"
                    if "shared_added_disk_bytes" in result
                    else ""
                )
                + (
                    f"; restore {result['restore_s']:.2f} s, of a wiped workspace "
                    f"{result['restore_all_s']:.2f} s"
                    if "restore_s" in result
                    else ""
                ),
                flush=True,
            )
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
