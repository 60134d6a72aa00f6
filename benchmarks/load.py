"""Load: many concurrent sessions on one machine (Docker provider, scripted model).

One command launches ``--sessions`` sessions at once through the REST API of a real
``jupyter server`` with the extension, then has each stream ``--turns`` chat turns over
SSE (every session at the same time), and measures:

- launches per second: sessions / (first POST launch → last 201), all launched at once;
- launch → ready (POST agents/launch → 201: the runner answers; its claude CLI may still
  be connecting, which the first turn waits for), launch → the first ``text_delta`` of
  the first turn, and chat → first ``text_delta`` (POST chat → the first text_delta on
  its SSE stream, over all turns and per turn number): p50 and p99;
- the server's event-loop lag, measured inside the server process by ``lagprobe.py`` (a
  tiny server extension loaded next to agcluster: a task on the server's loop sleeps
  10 ms again and again and records the overshoot), from the first launch to the last
  ``done``: p50, p99 and max (target p99 < 50 ms), split into while launching and while
  chatting, with the loop thread's own CPU time per sample (lag without CPU is waiting
  for a core; ``LAGPROBE_DEBUG`` and ``LAGPROBE_PROFILE`` in lagprobe.py say where the
  rest goes);
- memory per session: each session's container (runner + claude CLI) from the engine's
  stats, cache excluded like ``docker stats`` does, once every turn is done; also the
  peak the cgroup recorded (``max_usage``, cgroup v1 only), and the CPU time each
  container used (launch and all its turns); the server process's CPU time;
- delivery: every subscriber (each chat's SSE stream, and one ``agents/{id}/events``
  follower per session from seq 0) got gapless ``seq`` with nothing lost or repeated,
  and exactly the events of the session's log (``?follow=false`` afterwards); and each
  turn's model request carried the session's earlier prompts.

Failed launches and turns are counted and reported, not hidden.  Results go to
``benchmarks/results/load.json``.

    .venv/bin/python benchmarks/load.py --sessions 20 --turns 3
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import shutil
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from agcluster_jupyter._version import __version__
from agcluster_jupyter.testing import ScriptedModelServer
from agcluster_jupyter.testing.jupyter import JupyterServerProcess, runner_pids

JSON = dict[str, Any]

MODEL_KEY = "load-benchmark-model-key"
IMAGE = f"agcluster-agent:{__version__}"
HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results" / "load.json"
MATCH = "load turn"
LAG_TARGET_MS = 50.0


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile, ``q`` in [0, 1]."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = (len(ordered) - 1) * q
    low, high = int(index), min(int(index) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (index - low)


def summary_ms(values: Sequence[float]) -> JSON:
    """p50/p99/max/mean of durations in seconds, as milliseconds."""
    return {
        "n": len(values),
        "p50_ms": round(percentile(values, 0.5) * 1000, 1),
        "p99_ms": round(percentile(values, 0.99) * 1000, 1),
        "max_ms": round(max(values) * 1000, 1) if values else float("nan"),
        "mean_ms": round(statistics.fmean(values) * 1000, 1) if values else float("nan"),
    }


def reply_text(deltas: int) -> str:
    # the scripted model sends three words per delta
    return " ".join(f"w{i}" for i in range(deltas * 3))


def script(deltas: int, delay: float) -> list[JSON]:
    return [
        {
            "name": "load",
            "match": MATCH,
            "steps": [[{"text": reply_text(deltas)}, {"delay": delay}]],
        }
    ]


def prompt(session: int, turn: int) -> str:
    return f"{MATCH} {turn}: remember the token S{session}T{turn}"


# -- SSE ------------------------------------------------------------------------------


async def sse_events(response: httpx.Response) -> Any:
    """The events of an SSE response as they arrive (heartbeat comments skipped)."""
    fields: dict[str, str] = {}
    async for line in response.aiter_lines():
        if line == "":
            if "data" in fields:
                event = json.loads(fields["data"])
                if fields.get("event") != event.get("type") or fields.get("id") != str(
                    event.get("seq")
                ):
                    raise RuntimeError(f"SSE framing does not match its data: {fields}")
                yield event
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(": ")
            fields[name] = value


def gapless(seqs: Sequence[int], first: int | None = None) -> bool:
    """Consecutive, no repeat, no hole (and starting at ``first`` if given)."""
    if not seqs:
        return False
    if first is not None and seqs[0] != first:
        return False
    return list(seqs) == list(range(seqs[0], seqs[0] + len(seqs)))


# -- one session -----------------------------------------------------------------------


@dataclass
class SessionRun:
    index: int
    session_id: str = ""
    agent_id: str = ""
    launch_started: float = 0.0
    launch_done: float = 0.0
    launch_error: str = ""
    first_delta: list[float] = field(default_factory=list)
    #: turn number (from 1) → its first_delta
    first_delta_by_turn: dict[int, float] = field(default_factory=dict)
    turn_seconds: list[float] = field(default_factory=list)
    turn_errors: list[str] = field(default_factory=list)
    #: each chat stream's events, in order
    chat_streams: list[list[JSON]] = field(default_factory=list)
    follower: list[JSON] = field(default_factory=list)
    follower_task: asyncio.Task[None] | None = None


class Load:
    def __init__(self, server: JupyterServerProcess, client: httpx.AsyncClient, turns: int):
        self.server = server
        self.client = client
        self.turns = turns

    def url(self, path: str) -> str:
        return self.server.url + path

    async def follow(self, run: SessionRun) -> None:
        """One ``agents/{id}/events`` subscriber from seq 0, for the whole run."""
        async with self.client.stream(
            "GET", self.url(f"agents/{run.session_id}/events"), params={"after": "0"}
        ) as response:
            response.raise_for_status()
            async for event in sse_events(response):
                run.follower.append(event)

    async def chat(self, run: SessionRun, turn: int) -> None:
        start = time.monotonic()
        events: list[JSON] = []
        first: float | None = None
        async with self.client.stream(
            "POST",
            self.url(f"agents/{run.session_id}/chat"),
            json={"message": prompt(run.index, turn)},
            headers={"Accept": "text/event-stream"},
        ) as response:
            if response.status_code != 200:
                await response.aread()
                raise RuntimeError(f"chat answered {response.status_code}: {response.text[:300]}")
            async for event in sse_events(response):
                events.append(event)
                if first is None and event["type"] == "text_delta":
                    first = time.monotonic() - start
                if event["type"] == "done":
                    break
        run.chat_streams.append(events)
        run.turn_seconds.append(time.monotonic() - start)
        errors = [e for e in events if e["type"] == "error"]
        if errors:
            raise RuntimeError(f"turn {turn}: error event {errors[0]}")
        if first is None:
            raise RuntimeError(f"turn {turn}: no text_delta")
        run.first_delta.append(first)
        run.first_delta_by_turn[turn] = first

    async def session(self, run: SessionRun, go: asyncio.Event) -> None:
        await go.wait()
        run.launch_started = time.monotonic()
        try:
            response = await self.client.post(
                self.url("agents/launch"), json={"config_id": "code-assistant"}
            )
        except httpx.HTTPError as exc:
            run.launch_error = f"{type(exc).__name__}: {exc}"
            return
        run.launch_done = time.monotonic()
        if response.status_code != 201:
            run.launch_error = f"{response.status_code}: {response.text[:300]}"
            return
        body = response.json()
        run.session_id, run.agent_id = body["session_id"], body["agent_id"]
        if body["status"] != "ready":
            run.launch_error = f"launched but {body['status']}"
            return
        run.follower_task = asyncio.create_task(self.follow(run))
        for turn in range(1, self.turns + 1):
            try:
                await self.chat(run, turn)
            except (RuntimeError, httpx.HTTPError) as exc:
                run.turn_errors.append(f"{type(exc).__name__}: {exc}")

    async def lag_samples(self, reset: bool = False) -> list[tuple[float, float, float]]:
        """(when, lag, loop CPU) in seconds; ``when`` on this machine's monotonic clock."""
        response = await self.client.get(
            self.server.url.replace("api/agcluster/", "lagprobe"),
            params={"reset": "1" if reset else "0"},
        )
        response.raise_for_status()
        return [(float(t), float(lag), float(cpu)) for t, lag, cpu in response.json()["samples"]]

    async def log(self, run: SessionRun) -> list[JSON]:
        response = await self.client.get(
            self.url(f"agents/{run.session_id}/events"), params={"follow": "false"}
        )
        response.raise_for_status()
        return [e async for e in sse_events(response)]

    async def settle_follower(self, run: SessionRun, last_seq: int, timeout: float = 30) -> None:
        """Wait for the follower to reach ``last_seq``, then end it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if run.follower and run.follower[-1]["seq"] >= last_seq:
                break
            await asyncio.sleep(0.05)
        if run.follower_task is not None:
            run.follower_task.cancel()
            try:
                await run.follower_task
            except (asyncio.CancelledError, httpx.HTTPError):
                pass


# -- checks and measurements -------------------------------------------------------------


def delivery(run: SessionRun, log: list[JSON]) -> JSON:
    """Did every subscriber of this session get the log, gapless, nothing repeated?"""
    problems: list[str] = []
    if not gapless([e["seq"] for e in log], first=1):
        problems.append("the log itself is not gapless from 1")
    if run.follower != log:
        seqs = [e["seq"] for e in run.follower]
        problems.append(
            f"the events follower differs from the log ({len(seqs)} events vs {len(log)};"
            f" gapless={gapless(seqs, first=1)}, repeats={len(seqs) - len(set(seqs))})"
        )
    by_seq = {e["seq"]: e for e in log}
    for turn, stream in enumerate(run.chat_streams, 1):
        seqs = [e["seq"] for e in stream]
        if not gapless(seqs):
            problems.append(f"chat stream {turn} is not gapless: {seqs}")
        elif any(by_seq.get(e["seq"]) != e for e in stream):
            problems.append(f"chat stream {turn} differs from the log")
        elif stream[-1]["type"] != "done":
            problems.append(f"chat stream {turn} did not end with done")
    return {
        "subscribers": 1 + len(run.chat_streams),
        "events": len(log),
        "problems": problems,
    }


def conversation_kept(model: ScriptedModelServer, index: int, turns: int) -> bool:
    """The last turn's model request carried every earlier prompt of the session."""
    last = prompt(index, turns)
    requests = [r for r in model.message_requests if r.prompt == last]
    if not requests:
        return False
    sent = json.dumps(requests[-1].body.get("messages"))
    return all(f"S{index}T{t}" in sent for t in range(1, turns))


def container_stats(agent_ids: Sequence[str]) -> JSON:
    """Per container (runner + CLI): memory in use without the page cache (what ``docker
    stats`` shows), the cgroup's recorded peak (cgroup v1), and the CPU time it used
    since it started (launch and every turn)."""
    import concurrent.futures

    import docker

    client = docker.from_env(timeout=60)
    try:
        # each stats call samples for a second or two: ask for all at once
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            every = list(pool.map(lambda i: client.api.stats(i, stream=False), agent_ids))
    finally:
        client.close()
    usage: list[float] = []
    peaks: list[float] = []
    cpu: list[float] = []
    for stats in every:
        memory = stats.get("memory_stats") or {}
        inner = memory.get("stats") or {}
        cache = inner.get("total_inactive_file", inner.get("inactive_file", 0))
        if "usage" in memory:
            usage.append(memory["usage"] - cache)
        if memory.get("max_usage"):
            peaks.append(memory["max_usage"])
        total = ((stats.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage")
        if total:
            cpu.append(total / 1e9)

    def mib(values: list[float]) -> JSON:
        return {
            "n": len(values),
            "mean_mib": round(statistics.fmean(values) / 2**20, 1) if values else None,
            "max_mib": round(max(values) / 2**20, 1) if values else None,
        }

    return {
        "memory": {"in_use": mib(usage), "peak": mib(peaks)},
        "cpu_seconds": {
            "n": len(cpu),
            "mean": round(statistics.fmean(cpu), 2) if cpu else None,
            "max": round(max(cpu), 2) if cpu else None,
        },
    }


def containers_of(server: JupyterServerProcess) -> list[str]:
    """Containers of this server (by its state root label) still there; removed."""
    import docker
    from agcluster_jupyter.providers.base import LABEL_STATE_ROOT

    client = docker.from_env(timeout=60)
    try:
        found = client.containers.list(all=True, filters={"label": LABEL_STATE_ROOT})
        mine = [c for c in found if c.labels[LABEL_STATE_ROOT].startswith(str(server.base))]
        for container in mine:
            container.remove(force=True)
        return [c.name for c in mine]
    finally:
        client.close()


def process_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- the run ------------------------------------------------------------------------------


async def drive(
    server: JupyterServerProcess, model: ScriptedModelServer, sessions: int, turns: int, say: Any
) -> JSON:
    timeout = httpx.Timeout(600.0, connect=30.0)
    limits = httpx.Limits(max_connections=sessions * 3 + 10, max_keepalive_connections=20)
    async with httpx.AsyncClient(headers=server.headers, timeout=timeout, limits=limits) as client:
        load = Load(server, client, turns)
        runs = [SessionRun(i) for i in range(sessions)]
        go = asyncio.Event()
        tasks = [asyncio.create_task(load.session(run, go)) for run in runs]
        await load.lag_samples(reset=True)
        assert server.proc is not None
        cpu_before = process_cpu_seconds(server.proc.pid)
        started = time.monotonic()
        go.set()
        await asyncio.gather(*tasks)
        wall = time.monotonic() - started
        samples = await load.lag_samples()
        cpu = process_cpu_seconds(server.proc.pid) - cpu_before
        launched = [r for r in runs if r.session_id and not r.launch_error]
        say(f"  {len(launched)}/{sessions} launched; turns done in {wall:.1f} s; measuring")
        containers = await asyncio.to_thread(container_stats, [r.agent_id for r in launched])
        checks = []
        for run in launched:
            log = await load.log(run)
            await load.settle_follower(run, log[-1]["seq"] if log else 0)
            checks.append(delivery(run, log))
        for run in runs:
            if run.follower_task is not None and not run.follower_task.done():
                run.follower_task.cancel()
        for run in launched:
            await client.delete(load.url(f"agents/sessions/{run.session_id}"), params={"purge": 1})

    # the monotonic clock is the machine's: the server's loop time compares with ours
    launches_over = max((r.launch_done for r in launched), default=started)
    lag = [lag for _, lag, _ in samples]
    launch_ends = [r.launch_done for r in launched]
    launch_window = max(launch_ends) - min(r.launch_started for r in runs) if launch_ends else 0
    first_delta = [x for r in launched for x in r.first_delta]
    turn_errors = [f"session {r.index}: {e}" for r in runs for e in r.turn_errors]
    complete = [r for r in launched if not r.turn_errors]
    return {
        "wall_s": round(wall, 2),
        "launches": {
            "requested": sessions,
            "succeeded": len(launched),
            "failed": [f"session {r.index}: {r.launch_error}" for r in runs if r.launch_error],
            "window_s": round(launch_window, 2),
            "per_s": round(len(launched) / launch_window, 2) if launch_window else None,
            "ready": summary_ms([r.launch_done - r.launch_started for r in launched]),
            # "ready" means the runner answers; its CLI may still be connecting, which
            # the first turn waits for: this is what a user waits for after Launch
            "to_first_text_delta": summary_ms(
                [
                    r.launch_done - r.launch_started + r.first_delta_by_turn[1]
                    for r in launched
                    if 1 in r.first_delta_by_turn
                ]
            ),
        },
        "turns": {
            "requested": sessions * turns,
            "completed": len(first_delta),
            "errors": turn_errors,
            "first_text_delta": summary_ms(first_delta),
            "first_text_delta_by_turn": [
                summary_ms(
                    [r.first_delta_by_turn[t] for r in launched if t in r.first_delta_by_turn]
                )
                for t in range(1, turns + 1)
            ],
            "whole_turn": summary_ms([x for r in launched for x in r.turn_seconds]),
        },
        "event_loop_lag": {
            **summary_ms(lag),
            "target_p99_ms": LAG_TARGET_MS,
            "met": percentile(lag, 0.99) * 1000 < LAG_TARGET_MS if lag else False,
            "while_launching": summary_ms([x for t, x, _ in samples if t <= launches_over]),
            "while_chatting": summary_ms([x for t, x, _ in samples if t > launches_over]),
            # the loop thread's own CPU time in each sample: lag with little of it was
            # time spent waiting for a core or the GIL, not running callbacks
            "loop_cpu": summary_ms([cpu for _, _, cpu in samples]),
        },
        "server_cpu_s": round(cpu, 1),
        "memory_per_session": containers["memory"],
        # CPU time of each session's container from its start (launch + all its turns)
        "cpu_seconds_per_session": containers["cpu_seconds"],
        "delivery": {
            "subscribers": sum(c["subscribers"] for c in checks),
            "events": sum(c["events"] for c in checks),
            "problems": [p for c in checks for p in c["problems"]],
            "gapless": all(not c["problems"] for c in checks) and bool(checks),
        },
        "conversation_kept": sum(conversation_kept(model, r.index, turns) for r in complete),
    }


def run(
    sessions: int,
    turns: int,
    deltas: int = 20,
    delay: float = 0.02,
    quiet: bool = False,
    server_log: Path | None = None,
) -> JSON:
    def say(text: str) -> None:
        if not quiet:
            print(text, flush=True)

    with ScriptedModelServer(script(deltas, delay), api_key=MODEL_KEY) as model:
        server = JupyterServerProcess(
            model.url,
            MODEL_KEY,
            provider="docker",
            extra_args=[
                # exactly the sessions: N concurrent launches under max_sessions=N all
                # start (tests/faults/test_load_smoke.py)
                f"--AgClusterApp.max_sessions={sessions}",
                "--AgClusterApp.runner_start_timeout=300",
                # a dict on the command line replaces the configured one: name both
                "--ServerApp.jpserver_extensions=agcluster_jupyter=True",
                "--ServerApp.jpserver_extensions=lagprobe=True",
                "--ServerApp.log_level=WARN",
            ],
        )
        path = [str(HERE), os.environ.get("PYTHONPATH", "")]
        server.env["PYTHONPATH"] = os.pathsep.join(p for p in path if p)
        say(f"{sessions} sessions x {turns} turns (docker provider, {IMAGE}) ...")
        try:
            server.start()
            results = asyncio.run(drive(server, model, sessions, turns, say))
        finally:
            left = server.stop()
            left += sorted(runner_pids(str(server.base)))
            if server_log is not None:
                shutil.copyfile(server.log_path, server_log)
            containers = containers_of(server)
            shutil.rmtree(server.base, ignore_errors=True)
    results["cleanup"] = {
        "leftover_pids_killed": left,
        "containers_left": containers,
        "clean": not left and not containers,
    }
    return {
        "benchmark": "load",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "nproc": os.cpu_count(),
            "memory_gib": round(
                os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1
            ),
            "cpu_model": cpu_model(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
        },
        "image": IMAGE,
        "params": {"sessions": sessions, "turns": turns, "deltas": deltas, "delay_s": delay},
        **results,
    }


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def table(results: JSON) -> str:
    launches, turns = results["launches"], results["turns"]
    lag, memory, delivered = (
        results["event_loop_lag"],
        results["memory_per_session"],
        results["delivery"],
    )
    p = results["params"]
    lines = [
        f"{p['sessions']} sessions x {p['turns']} turns, {results['machine']['nproc']} cores",
        f"{'':32s} {'p50':>9s} {'p99':>9s} {'max':>9s}",
    ]
    by_turn = [
        (f"  turn {i} (ms)", row) for i, row in enumerate(turns["first_text_delta_by_turn"], 1)
    ]
    for name, row in (
        ("launch → ready (ms)", launches["ready"]),
        ("launch → turn 1's first delta (ms)", launches["to_first_text_delta"]),
        ("chat → first text_delta (ms)", turns["first_text_delta"]),
        *by_turn,
        ("whole turn (ms)", turns["whole_turn"]),
        ("server event-loop lag (ms)", lag),
    ):
        lines.append(f"{name:32s} {row['p50_ms']:9.1f} {row['p99_ms']:9.1f} {row['max_ms']:9.1f}")
    lines += [
        f"launches: {launches['succeeded']}/{launches['requested']} in {launches['window_s']} s"
        f" = {launches['per_s']} /s",
        f"turns: {turns['completed']}/{turns['requested']} completed",
        f"lag p99 < {lag['target_p99_ms']:.0f} ms: {'yes' if lag['met'] else 'NO'}",
        f"memory per session (runner + CLI): {memory['in_use']['mean_mib']} MiB in use (mean),"
        f" peak {memory['peak']['mean_mib']} MiB (mean)",
        f"CPU per session (runner + CLI, launch and all turns):"
        f" {results['cpu_seconds_per_session']['mean']} s (mean)",
        f"server CPU: {results['server_cpu_s']} s over {results['wall_s']} s",
        f"delivery: {delivered['subscribers']} subscribers, {delivered['events']} events in the"
        f" logs, gapless and no repeats: {'yes' if delivered['gapless'] else 'NO'}",
        f"conversation kept in {results['conversation_kept']} sessions",
    ]
    for problem in (launches["failed"] + turns["errors"] + delivered["problems"])[:10]:
        lines.append(f"  ! {problem}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--deltas", type=int, default=20, help="text deltas per reply")
    parser.add_argument("--delay", type=float, default=0.02, help="seconds before each delta")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--no-save", action="store_true", help="do not write the JSON")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument(
        "--server-log",
        type=Path,
        help="keep the server's log here (with LAGPROBE_DEBUG=0.05 in the environment it "
        "names every callback that held the loop longer than 50 ms)",
    )
    args = parser.parse_args(argv)
    results = run(
        args.sessions,
        args.turns,
        args.deltas,
        args.delay,
        quiet=args.quiet,
        server_log=args.server_log,
    )
    if not args.quiet:
        print(table(results))
    if not args.no_save:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1) + "\n")
        if not args.quiet:
            print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
