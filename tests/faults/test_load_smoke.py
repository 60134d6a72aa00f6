"""Load: a smoke test of ``benchmarks/load.py`` with tiny numbers (it runs end to end on
the Docker provider, writes its JSON, every subscriber got every event once, nothing is
left behind), and the two faults the 20-session run found, as small tests."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import math
import ssl
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from agcluster_jupyter.providers.base import RunnerHandle, channel_for

from ..e2e.docker_support import IMAGE, docker_unusable

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "load.py"


def load_benchmark() -> ModuleType:
    spec = importlib.util.spec_from_file_location("load_benchmark", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def engine() -> None:
    docker: Any = __import__("docker")
    try:
        client = docker.from_env(timeout=30)
        client.images.get(IMAGE)
    except Exception as exc:  # noqa: BLE001 - any failure means no usable engine or image
        docker_unusable(f"no Docker engine or no {IMAGE} ({exc})")
    client.close()


@pytest.mark.docker
@pytest.mark.cli
def test_load_benchmark_runs(engine: None, tmp_path: Path) -> None:
    bench = load_benchmark()
    out = tmp_path / "load.json"
    argv = ["--sessions", "2", "--turns", "2", "--deltas", "4", "--delay", "0"]
    assert bench.main([*argv, "--out", str(out), "--quiet"]) == 0
    results = json.loads(out.read_text())

    assert results["params"] == {"sessions": 2, "turns": 2, "deltas": 4, "delay_s": 0.0}
    assert results["machine"]["nproc"] >= 1 and results["date"]
    launches, turns = results["launches"], results["turns"]
    assert launches["succeeded"] == 2 and launches["failed"] == []
    assert turns["completed"] == 4 and turns["errors"] == []
    delivery = results["delivery"]
    assert delivery["gapless"] and delivery["problems"] == []
    assert delivery["subscribers"] == 2 * (1 + 2)  # a follower and two chats each
    assert results["conversation_kept"] == 2
    memory = results["memory_per_session"]["in_use"]
    assert memory["n"] == 2 and memory["mean_mib"] > 10
    lag = results["event_loop_lag"]
    assert lag["n"] > 10  # the probe ran on the server's loop all along
    figures = [
        launches["per_s"],
        launches["ready"]["p50_ms"],
        turns["first_text_delta"]["p99_ms"],
        lag["p99_ms"],
        lag["loop_cpu"]["p99_ms"],
    ]
    assert all(isinstance(x, (int, float)) and math.isfinite(x) for x in figures), figures
    # no container, runner or process of its server outlived it
    assert results["cleanup"] == {"leftover_pids_killed": [], "containers_left": [], "clean": True}


# -- what the 20-session run found ----------------------------------------------------


@pytest.fixture
def agcluster_config() -> dict[str, Any]:
    return {"max_sessions": 3}


@pytest.mark.cli
async def test_as_many_concurrent_launches_as_max_sessions_all_start(
    api: Any, launched: Any
) -> None:
    """``max_sessions=3`` and three launches at once: three sessions start."""
    replies = await asyncio.gather(*(launched() for _ in range(3)), return_exceptions=True)
    assert [r["status"] if isinstance(r, dict) else str(r) for r in replies] == ["ready"] * 3


def test_runner_channels_share_one_tls_context(monkeypatch: pytest.MonkeyPatch) -> None:
    """A channel is made for every runner call (each turn, relay reconnect, health poll):
    the CA bundle must be read once, not per channel."""
    loads: list[object] = []
    original = ssl.SSLContext.load_verify_locations

    def counting(self: ssl.SSLContext, *args: Any, **kwargs: Any) -> None:
        loads.append(args)
        original(self, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counting)
    for endpoint in ("unix:/nonexistent/runner.sock", "http://127.0.0.1:9"):
        handle = RunnerHandle("docker", "s", "a", endpoint)
        for _ in range(3):
            channel_for(handle)
    assert len(loads) <= 1, f"the CA bundle was read {len(loads)} times for 6 channels"
