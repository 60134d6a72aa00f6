"""Smoke test of ``benchmarks/widget_replay.py`` with tiny numbers: it runs, the replayed
and the streamed widget agree with the bare fold, and it writes its JSON. No timing
assertions: it is a benchmark, not a performance test."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "widget_replay.py"


def test_widget_replay_benchmark_runs(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("widget_replay", SCRIPT)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "widget_replay.json"
    assert bench.main(["--turns", "3", "--deltas", "2", "--tools", "2", "--out", str(out),
                       "--quiet"]) == 0  # fmt: skip
    results = json.loads(out.read_text())
    assert results["params"] == {"turns": 3, "deltas": 2, "tools": 2, "events": 3 * 12}
    assert results["tool_rows"] == 6
    assert results["replay_ms"] > 0 and results["live_per_event_us"] > 0
