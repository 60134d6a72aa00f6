"""Smoke test of ``benchmarks/relay_overhead.py`` with tiny numbers: it runs end to end,
writes its JSON, matches every relayed delta and leaves no process behind. No timing
assertions: it is a benchmark, not a performance test."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path
from types import ModuleType

import pytest

from ..support import runner_pids

pytestmark = pytest.mark.cli

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "relay_overhead.py"


def load_benchmark() -> ModuleType:
    spec = importlib.util.spec_from_file_location("relay_overhead", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_relay_overhead_benchmark_runs(tmp_path: Path) -> None:
    bench = load_benchmark()
    out = tmp_path / "relay_overhead.json"
    argv = ["--deltas", "20", "--latency-deltas", "10", "--delay", "0.005", "--turns", "1"]
    assert bench.main([*argv, "--out", str(out), "--quiet"]) == 0
    results = json.loads(out.read_text())

    assert results["params"] == {
        "deltas": 20,
        "latency_deltas": 10,
        "delay_s": 0.005,
        "turns": 1,
        "statistic": "median over turns",
    }
    assert results["machine"]["nproc"] >= 1 and results["machine"]["cpu_model"]
    assert results["date"]
    for side in ("baseline", "relayed"):
        (turn,) = results["throughput"][side]["turns"]
        assert turn["model_deltas"] == turn["client_events"] == turn["matched"] == 20
        (turn,) = results["latency"][side]["turns"]
        assert turn["model_deltas"] == turn["client_events"] == turn["matched"] == 10
    delivery = results["delivery"]
    assert delivery["all_matched"] and delivery["unmatched_markers"] == 0
    assert delivery["model_deltas"] == delivery["matched"] == 30
    figures = [
        results["throughput"]["baseline_events_per_s"],
        results["throughput"]["relayed_events_per_s"],
        *results["latency"]["added"].values(),
        *results["turn"]["latency"].values(),
    ]
    assert all(isinstance(x, (int, float)) and math.isfinite(x) for x in figures), figures
    assert results["cleanup"] == {"leftover_pids_killed": [], "clean": True}
    assert not runner_pids("/tmp/agc-bench-")
