"""Launch latency on the Docker provider: cold and warm, next to a bare ``docker run``.

One command measures, in one run on one machine:

- bare:  ``docker run --rm <agent image> true`` (the engine's own floor for this image);
- cold:  ``POST agents/launch`` → 201 (the runner answered its health check over the
  socket and the claude CLI is connected: the session is ``ready``), and → the first
  ``text_delta`` of a first chat turn;
- warm:  the same with ``warm_pool_size`` > 0, where a launch claims a started session
  (the pool refills between launches; the benchmark waits for it, so each launch is a
  claim).

p50 and p95 over ``--launches`` each, and the cold/bare ratio (target < 1.5) and warm
p50 (target < 150 ms).  Results go to ``benchmarks/results/launch.json``.

    python benchmarks/launch.py --launches 20
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from agcluster_jupyter._version import __version__
from agcluster_jupyter.testing import ScriptedModelServer
from agcluster_jupyter.testing.jupyter import JupyterServerProcess

MODEL_KEY = "launch-benchmark-model-key"
IMAGE = f"agcluster-agent:{__version__}"
RESULTS = Path(__file__).parent / "results" / "launch.json"


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = (len(ordered) - 1) * q
    low, high = int(index), min(int(index) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (index - low)


def summary(values: Sequence[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50_ms": percentile(values, 0.5) * 1000,
        "p95_ms": percentile(values, 0.95) * 1000,
        "mean_ms": statistics.fmean(values) * 1000 if values else float("nan"),
    }


def bare_docker_runs(count: int) -> list[float]:
    times = []
    for _ in range(count):
        start = time.perf_counter()
        subprocess.run(
            ["docker", "run", "--rm", "--network", "none", IMAGE, "true"],
            check=True,
            capture_output=True,
        )
        times.append(time.perf_counter() - start)
    return times


def first_delta(client: httpx.Client, server: JupyterServerProcess, sid: str) -> float:
    """Seconds from POST chat to the first text_delta event."""
    start = time.perf_counter()
    headers = {**server.headers, "Accept": "text/event-stream"}
    with client.stream(
        "POST", server.url + f"agents/{sid}/chat", json={"message": "hello"}, headers=headers
    ) as response:
        response.raise_for_status()
        first: float | None = None
        for line in response.iter_lines():
            if first is None and line == "event: text_delta":
                first = time.perf_counter() - start
            if line == "event: done":
                break
    if first is None:
        raise RuntimeError("the turn produced no text_delta")
    return first


def wait_pool(client: httpx.Client, server: JupyterServerProcess, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        health = client.get(server.url + "health", headers=server.headers).json()
        pool = health.get("warm_pool") or {}
        if pool.get("available", 0) >= pool.get("size", 1):
            return
        time.sleep(0.05)
    raise RuntimeError("the warm pool did not refill")


def launches(model_url: str, count: int, pool: int, say: Any) -> dict[str, list[float]]:
    extra = [f"--AgClusterApp.warm_pool_size={pool}", "--AgClusterApp.max_sessions=100"]
    server = JupyterServerProcess(model_url, MODEL_KEY, provider="docker", extra_args=extra)
    ready: list[float] = []
    delta: list[float] = []
    server.start()
    try:
        with httpx.Client(timeout=120) as client:
            for i in range(count + 1):  # the first is a warm-up (image cache, imports)
                if pool:
                    wait_pool(client, server)
                start = time.perf_counter()
                response = client.post(
                    server.url + "agents/launch",
                    json={"config_id": "code-assistant"},
                    headers=server.headers,
                )
                took = time.perf_counter() - start
                if response.status_code != 201:
                    raise RuntimeError(f"launch failed: {response.text}")
                sid = response.json()["session_id"]
                to_delta = took + first_delta(client, server, sid)
                client.delete(
                    server.url + f"agents/sessions/{sid}",
                    params={"purge": "true"},
                    headers=server.headers,
                )
                if i:
                    ready.append(took)
                    delta.append(to_delta)
                    say(f"  {'warm' if pool else 'cold'} {i:2d}: ready {took * 1000:7.1f} ms")
    finally:
        left = server.stop()
        if left:
            say(f"  killed leftovers: {left}")
    return {"ready": ready, "first_delta": delta}


def run(count: int, quiet: bool = False) -> dict[str, Any]:
    def say(text: str) -> None:
        if not quiet:
            print(text, flush=True)

    say(f"bare docker run x{count} ...")
    bare = bare_docker_runs(count)
    with ScriptedModelServer(api_key=MODEL_KEY) as model:
        say(f"cold launches x{count} ...")
        cold = launches(model.url, count, 0, say)
        say(f"warm launches x{count} ...")
        warm = launches(model.url, count, 2, say)
    results: dict[str, Any] = {
        "benchmark": "launch",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"nproc": os.cpu_count(), "python": sys.version.split()[0]},
        "image": IMAGE,
        "bare_docker_run": summary(bare),
        "cold": {"ready": summary(cold["ready"]), "first_delta": summary(cold["first_delta"])},
        "warm": {"ready": summary(warm["ready"]), "first_delta": summary(warm["first_delta"])},
    }
    bare_p50 = results["bare_docker_run"]["p50_ms"]
    results["cold_ready_over_bare_p50"] = results["cold"]["ready"]["p50_ms"] / bare_p50
    return results


def table(results: dict[str, Any]) -> str:
    rows = [
        ("bare docker run", results["bare_docker_run"]),
        ("cold launch → ready", results["cold"]["ready"]),
        ("cold launch → first text_delta", results["cold"]["first_delta"]),
        ("warm launch → ready", results["warm"]["ready"]),
        ("warm launch → first text_delta", results["warm"]["first_delta"]),
    ]
    lines = [f"{'':34s} {'p50 ms':>9s} {'p95 ms':>9s}"]
    lines += [f"{name:34s} {r['p50_ms']:9.1f} {r['p95_ms']:9.1f}" for name, r in rows]
    lines.append(f"cold ready / bare docker run (p50): {results['cold_ready_over_bare_p50']:.2f}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--launches", type=int, default=20)
    parser.add_argument("--no-save", action="store_true", help="do not write the JSON")
    args = parser.parse_args(argv)
    results = run(args.launches)
    print(table(results))
    if not args.no_save:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=1) + "\n")
        print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
