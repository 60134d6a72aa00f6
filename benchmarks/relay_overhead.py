"""Relay overhead of the event path, measured in one run.

Relayed: scripted model → gateway → claude CLI → runner → Jupyter server → SSE client.
Baseline: the scripted model streaming straight to an httpx client (POST /v1/messages,
``stream: true``). Both are driven by this process: the scripted model serves from a
thread here and timestamps every delta it sends (its ``on_delta`` hook); the client
timestamps every delta it receives. ``time.monotonic_ns()`` is CLOCK_MONOTONIC, one
clock for the whole machine, so the two compare across the processes in between.

Each text delta carries a marker (``d00042 x y``), so every relayed ``text_delta`` is
matched to the model delta it came from, even if a stage merged or split deltas.

- throughput: one reply of ``--deltas`` text deltas sent as fast as the model can;
  events/s = deltas delivered per second at the client, first to last delta received.
- latency: ``--latency-deltas`` deltas with ``--delay`` seconds before each one, so
  nothing queues; latency = client receive time − model send time, per delta. The first
  delta of a reply is reported on its own; p50/p95/mean are over the others. "Added" is
  relayed minus baseline, for each statistic.
- turn: POST chat → the model's first delta, → first ``text_delta``, → ``done``.

Every figure is the median over ``--turns`` turns (one session, after a warm-up turn).

    .venv/bin/python benchmarks/relay_overhead.py --deltas 400 --turns 5

starts the model and a ``jupyter server`` (``--AgClusterApp.provider=local``) itself,
prints a table, writes ``benchmarks/results/relay_overhead.json`` and stops everything
it started (it checks that no runner or CLI process is left).
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from agcluster_jupyter.testing import RecordedRequest, ScriptedModelServer
from agcluster_jupyter.testing.jupyter import JupyterServerProcess

JSON = dict[str, Any]

MODEL_KEY = "relay-benchmark-model-key"
TOKEN = "relay-benchmark-token"
THROUGHPUT = "bench-throughput"
LATENCY = "bench-latency"
MARKER = re.compile(r"\bd(\d{5})\b")
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "relay_overhead.json"


def marker_text(deltas: int) -> str:
    """Text the scripted model streams as exactly ``deltas`` deltas (three words each),
    delta i starting with the marker ``d{i:05d}``."""
    return " ".join(f"d{i:05d} x y" for i in range(deltas))


def markers(text: str) -> list[int]:
    return [int(m) for m in MARKER.findall(text)]


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile, ``q`` in [0, 100]."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


# -- the model side -----------------------------------------------------------------


class SendLog:
    """When the scripted model sent each text delta (monotonic ns), from its thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sent: list[tuple[int, str]] = []

    def hook(self, request: RecordedRequest, index: int, data: JSON) -> None:
        now = time.monotonic_ns()
        delta = data.get("delta") or {}
        if delta.get("type") == "text_delta":
            with self._lock:
                self._sent.append((now, str(delta.get("text", ""))))

    def take(self) -> list[tuple[int, str]]:
        with self._lock:
            sent, self._sent = self._sent, []
        return sent


def scenarios(deltas: int, latency_deltas: int, delay: float) -> list[JSON]:
    return [
        {"name": THROUGHPUT, "match": THROUGHPUT, "steps": [[{"text": marker_text(deltas)}]]},
        {
            "name": LATENCY,
            "match": LATENCY,
            "steps": [[{"text": marker_text(latency_deltas)}, {"delay": delay}]],
        },
    ]


# -- one turn -------------------------------------------------------------------------


@dataclass
class Trace:
    """One reply as both ends saw it; times in monotonic ns."""

    posted: int
    sent: list[tuple[int, str]] = field(default_factory=list)  # model side
    received: list[tuple[int, str]] = field(default_factory=list)  # client side
    done: int | None = None

    def analyse(self) -> JSON:
        sent_at: dict[int, int] = {}
        duplicates = 0
        for t, text in self.sent:
            for m in markers(text):
                if m in sent_at:
                    duplicates += 1  # a retried request: keep the first send
                else:
                    sent_at[m] = t
        received_at: dict[int, int] = {}
        merged = 0
        for t, text in self.received:
            found = markers(text)
            merged += len(found) > 1
            for m in found:
                received_at.setdefault(m, t)
        order = sorted(sent_at)
        latencies = [(received_at[m] - sent_at[m]) / 1e6 for m in order if m in received_at]
        rest = latencies[1:]
        recv_times = [t for t, _ in self.received]
        send_times = [sent_at[m] for m in order]
        n = len(self.received)
        out: JSON = {
            "model_deltas": len(sent_at),
            "client_events": n,
            "matched": sum(m in received_at for m in order),
            "unmatched": sorted(set(sent_at) ^ set(received_at)),
            "merged_events": merged,
            "duplicate_sends": duplicates,
            "events_per_s": (n - 1) / ((recv_times[-1] - recv_times[0]) / 1e9)
            if n > 1 and recv_times[-1] > recv_times[0]
            else float("nan"),
            "model_deltas_per_s": (len(send_times) - 1) / ((send_times[-1] - send_times[0]) / 1e9)
            if len(send_times) > 1 and send_times[-1] > send_times[0]
            else float("nan"),
            "first_ms": latencies[0] if latencies else float("nan"),
            "p50_ms": percentile(rest, 50),
            "p95_ms": percentile(rest, 95),
            "mean_ms": statistics.fmean(rest) if rest else float("nan"),
            "max_ms": max(rest) if rest else float("nan"),
        }
        if send_times:
            out["post_to_model_first_delta_ms"] = (send_times[0] - self.posted) / 1e6
        if recv_times:
            out["post_to_first_delta_ms"] = (recv_times[0] - self.posted) / 1e6
        if self.done is not None and recv_times:
            out["post_to_done_ms"] = (self.done - self.posted) / 1e6
            out["last_delta_to_done_ms"] = (self.done - recv_times[-1]) / 1e6
        return out


def baseline_turn(
    client: httpx.Client, model: ScriptedModelServer, log: SendLog, prompt: str
) -> Trace:
    """The scripted model straight to this client."""
    log.take()
    body = {
        "model": "scripted-benchmark",
        "max_tokens": 8192,
        "stream": True,
        "messages": [{"role": "user", "content": prompt}],
    }
    headers = {"x-api-key": MODEL_KEY, "anthropic-version": "2023-06-01"}
    trace = Trace(posted=time.monotonic_ns())
    with client.stream("POST", f"{model.url}/v1/messages", json=body, headers=headers) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if not line.startswith("data: "):
                continue
            now = time.monotonic_ns()
            event = json.loads(line[6:])
            if event["type"] == "content_block_delta" and event["delta"]["type"] == "text_delta":
                trace.received.append((now, event["delta"]["text"]))
            elif event["type"] == "message_stop":
                trace.done = now
    trace.sent = log.take()
    return trace


def relayed_turn(
    client: httpx.Client, api: str, session_id: str, log: SendLog, prompt: str
) -> Trace:
    """The whole path: POST chat on the Jupyter server, read its SSE to ``done``."""
    log.take()
    headers = {"Accept": "text/event-stream"}
    trace = Trace(posted=time.monotonic_ns())
    url = f"{api}agents/{session_id}/chat"
    with client.stream("POST", url, json={"message": prompt}, headers=headers) as r:
        if r.status_code != 200:
            raise RuntimeError(f"chat: HTTP {r.status_code}: {r.read().decode()[:500]}")
        for line in r.iter_lines():
            if not line.startswith("data: "):
                continue
            now = time.monotonic_ns()
            event = json.loads(line[6:])
            kind = event["type"]
            if kind == "text_delta":
                trace.received.append((now, event["text"]))
            elif kind == "error":
                raise RuntimeError(f"chat: error event: {event}")
            elif kind == "done":
                trace.done = now
    trace.sent = log.take()
    return trace


# -- the Jupyter server ---------------------------------------------------------------


# -- the run --------------------------------------------------------------------------


def machine() -> JSON:
    cpu = platform.processor() or platform.machine()
    mhz: float | None = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            name, _, value = line.partition(":")
            if name.strip() == "model name":
                cpu = value.strip()
            elif name.strip() == "cpu MHz" and mhz is None:
                mhz = round(float(value), 0)
    except (OSError, ValueError):
        pass
    versions: JSON = {"python": platform.python_version()}
    for dist in ("agcluster-jupyter", "claude-agent-sdk", "jupyter_server", "tornado"):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    try:
        import claude_agent_sdk

        bundled = Path(claude_agent_sdk.__file__).parent / "_bundled" / "claude.version"
        versions["claude-cli"] = bundled.read_text().strip()
    except (ImportError, OSError):
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu,
        "cpu_mhz": mhz,
        "platform": platform.platform(),
        "versions": versions,
    }


def summarise(turns: list[JSON]) -> JSON:
    """Median over turns of every numeric figure, plus the turns themselves."""
    keys = [k for k, v in turns[0].items() if isinstance(v, (int, float))]
    out: JSON = {k: median([t[k] for t in turns if k in t]) for k in keys}
    out["turns"] = turns
    return out


def run(deltas: int, latency_deltas: int, delay: float, turns: int, quiet: bool = False) -> JSON:
    """Start everything, measure, stop everything; the results as JSON data."""
    started = time.monotonic()

    def say(text: str) -> None:
        if not quiet:
            print(text, file=sys.stderr, flush=True)

    log = SendLog()
    base = Path(tempfile.mkdtemp(prefix="agc-bench-", dir="/tmp"))
    base.chmod(0o755)  # the CLI runs as `nobody` when this runs as root
    leftovers: list[int] = []
    results: JSON = {}
    server: JupyterServerProcess | None = None
    try:
        model = ScriptedModelServer(
            scenarios(deltas, latency_deltas, delay), api_key=MODEL_KEY, on_delta=log.hook
        )
        headers = {"Authorization": f"token {TOKEN}"}
        with model, httpx.Client(timeout=120, headers=headers) as client:
            server = JupyterServerProcess(model.url, MODEL_KEY, base=base, token=TOKEN)
            say(f"starting jupyter server on port {server.port} ...")
            server.start()
            launch = client.post(server.url + "agents/launch", json={"config_id": "code-assistant"})
            if launch.status_code != 201:
                raise RuntimeError(f"launch: HTTP {launch.status_code}: {launch.text}")
            sid = launch.json()["session_id"]
            say(f"session {sid}: warm-up turn")
            relayed_turn(client, server.url, sid, log, f"{THROUGHPUT} warm-up")
            baseline_turn(client, model, log, f"{THROUGHPUT} warm-up")
            baseline_turn(client, model, log, f"{LATENCY} warm-up")
            server.note_children()

            measured: dict[str, dict[str, list[JSON]]] = {
                "throughput": {"baseline": [], "relayed": []},
                "latency": {"baseline": [], "relayed": []},
            }
            for kind, prompt in (("throughput", THROUGHPUT), ("latency", LATENCY)):
                for i in range(turns):
                    say(f"{kind} turn {i + 1}/{turns}")
                    text = f"{prompt} turn {i + 1}"
                    measured[kind]["baseline"].append(
                        baseline_turn(client, model, log, text).analyse()
                    )
                    measured[kind]["relayed"].append(
                        relayed_turn(client, server.url, sid, log, text).analyse()
                    )
                    server.note_children()

            stop = client.delete(server.url + f"agents/sessions/{sid}", params={"purge": "true"})
            if stop.status_code >= 400:
                say(f"stopping the session: HTTP {stop.status_code} {stop.text}")
            results = build_results(measured, deltas, latency_deltas, delay, turns)
    except BaseException:
        if server is not None:
            print(server.tail(), file=sys.stderr)
        raise
    finally:
        if server is not None:
            leftovers = server.stop()
        shutil.rmtree(base, ignore_errors=True)
    results["cleanup"] = {"leftover_pids_killed": leftovers, "clean": not leftovers}
    results["elapsed_s"] = round(time.monotonic() - started, 1)
    return results


def build_results(
    measured: dict[str, dict[str, list[JSON]]],
    deltas: int,
    latency_deltas: int,
    delay: float,
    turns: int,
) -> JSON:
    tp = {side: summarise(t) for side, t in measured["throughput"].items()}
    lat = {side: summarise(t) for side, t in measured["latency"].items()}
    added = {
        k: lat["relayed"][k] - lat["baseline"][k]
        for k in ("first_ms", "p50_ms", "p95_ms", "mean_ms")
    }
    relayed = measured["throughput"]["relayed"] + measured["latency"]["relayed"]
    delivery = {
        "model_deltas": sum(t["model_deltas"] for t in relayed),
        "relayed_text_delta_events": sum(t["client_events"] for t in relayed),
        "matched": sum(t["matched"] for t in relayed),
        "merged_events": sum(t["merged_events"] for t in relayed),
        "unmatched_markers": sum(len(t["unmatched"]) for t in relayed),
        "duplicate_sends": sum(t["duplicate_sends"] for t in relayed),
    }
    delivery["one_event_per_delta"] = (
        delivery["model_deltas"] == delivery["relayed_text_delta_events"] == delivery["matched"]
        and delivery["merged_events"] == 0
    )
    delivery["all_matched"] = (
        delivery["unmatched_markers"] == 0 and delivery["matched"] == delivery["model_deltas"]
    )
    turn_keys = (
        "post_to_model_first_delta_ms",
        "post_to_first_delta_ms",
        "post_to_done_ms",
        "last_delta_to_done_ms",
    )
    return {
        "benchmark": "relay_overhead",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "params": {
            "deltas": deltas,
            "latency_deltas": latency_deltas,
            "delay_s": delay,
            "turns": turns,
            "statistic": "median over turns",
        },
        "throughput": {
            "baseline_events_per_s": tp["baseline"]["events_per_s"],
            "relayed_events_per_s": tp["relayed"]["events_per_s"],
            "relayed_over_baseline": tp["relayed"]["events_per_s"] / tp["baseline"]["events_per_s"],
            "model_deltas_per_s_baseline": tp["baseline"]["model_deltas_per_s"],
            "model_deltas_per_s_relayed": tp["relayed"]["model_deltas_per_s"],
            "baseline": tp["baseline"],
            "relayed": tp["relayed"],
        },
        "latency": {
            "added": added,
            "baseline": lat["baseline"],
            "relayed": lat["relayed"],
        },
        "turn": {
            "throughput": {k: tp["relayed"].get(k) for k in turn_keys},
            "latency": {k: lat["relayed"].get(k) for k in turn_keys},
        },
        "delivery": delivery,
    }


def table(results: JSON) -> str:
    tp, lat, turn = results["throughput"], results["latency"], results["turn"]
    p = results["params"]
    m = results["machine"]
    rows = [
        ("text deltas / s", tp["baseline_events_per_s"], tp["relayed_events_per_s"], None),
    ]
    for key, label in (
        ("first_ms", "first delta latency, ms"),
        ("p50_ms", "per-delta latency p50, ms"),
        ("p95_ms", "per-delta latency p95, ms"),
        ("mean_ms", "per-delta latency mean, ms"),
    ):
        rows.append((label, lat["baseline"][key], lat["relayed"][key], lat["added"][key]))
    lines = [
        f"relay overhead: {p['deltas']} deltas (throughput), {p['latency_deltas']} deltas "
        f"every {p['delay_s'] * 1000:g} ms (latency), median of {p['turns']} turns",
        f"machine: {m['nproc']} cores, {m['cpu_model']}",
        "",
        f"{'':30} {'baseline':>10} {'relayed':>10} {'added':>10}",
    ]
    for label, base, relayed, extra in rows:
        added = f"{extra:10.2f}" if extra is not None else f"{'':>10}"
        lines.append(f"{label:30} {base:10.2f} {relayed:10.2f} {added}")
    lines.append("")
    lines.append(f"{'turn (relayed), ms':30} {'throughput':>10} {'latency':>10}")
    for key, label in (
        ("post_to_model_first_delta_ms", "POST chat → model 1st delta"),
        ("post_to_first_delta_ms", "POST chat → 1st text_delta"),
        ("post_to_done_ms", "POST chat → done"),
        ("last_delta_to_done_ms", "last text_delta → done"),
    ):
        lines.append(f"{label:30} {turn['throughput'][key]:10.1f} {turn['latency'][key]:10.1f}")
    d = results["delivery"]
    lines.append("")
    lines.append(
        f"delivery: {d['model_deltas']} model deltas, {d['relayed_text_delta_events']} relayed "
        f"text_delta events, {d['matched']} matched, {d['merged_events']} merged"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--deltas", type=int, default=400, help="deltas of the throughput reply")
    parser.add_argument(
        "--latency-deltas",
        type=int,
        default=None,
        help="deltas of the latency reply (default: --deltas / 2, at most 200)",
    )
    parser.add_argument(
        "--delay", type=float, default=0.01, help="seconds before each latency delta"
    )
    parser.add_argument("--turns", type=int, default=5, help="measured turns of each kind")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if args.deltas < 2 or args.turns < 1:
        parser.error("need --deltas >= 2 and --turns >= 1")
    latency_deltas = args.latency_deltas or max(2, min(200, args.deltas // 2))
    results = run(args.deltas, latency_deltas, args.delay, args.turns, quiet=args.quiet)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    if not args.quiet:
        print(table(results))
        print(f"\nwrote {args.out} in {results['elapsed_s']} s")
    if not results["cleanup"]["clean"]:
        print(
            f"killed leftover processes: {results['cleanup']['leftover_pids_killed']}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
