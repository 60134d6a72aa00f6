"""What the runner boundary costs at launch on the Docker provider: A/B in one run.

A: the container as it was before (everything as the agent's uid:gid, no capabilities,
   the runner's socket right in the socket folder);
B: the container as the provider makes it now (``container_kwargs``: the runner root with
   six capabilities, starting the claude CLI as uid:gid, its socket in a folder of its
   own, the control token's digest in its environment).

Both run the same image and the same real runner, interleaved A, B, A, B, ...; each is
timed from ``containers.create`` to the runner's ``/health`` saying ``ok`` (the claude CLI
started and connected, which is where the uid switch happens).  No model is needed: the
CLI makes no model call before the first message.  Results go to
``benchmarks/results/runner_uids.json``.

    python benchmarks/runner_uids.py --runs 10
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

import docker
from agcluster_jupyter._version import __version__
from agcluster_jupyter.config import AgentConfig
from agcluster_jupyter.providers.base import RunnerSpec
from agcluster_jupyter.providers.docker_spec import (
    RUNNER_SOCKET,
    SOCKET_MOUNT,
    ContainerSettings,
    container_kwargs,
)

IMAGE = f"agcluster-agent:{__version__}"
TOKEN = "benchmark-control-token"


def _folders(base: Path, uid: int, gid: int) -> RunnerSpec:
    for name in ("ws", "state", "s"):
        (base / name).mkdir(parents=True, exist_ok=True)
        os.chown(base / name, uid, gid)
    (base / "s").chmod(0o700)
    return RunnerSpec(
        session_id="0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
        config=AgentConfig(id="bench", allowed_tools=["Bash"]),
        workspace=base / "ws",
        state_dir=base / "state",
        socket_dir=base / "s",
        session_token="benchmark-session-token",
        gateway=f"unix:{SOCKET_MOUNT}/gateway.sock",
        control_token=TOKEN,
    )


def _before(kwargs: dict[str, Any], uid: int, gid: int) -> tuple[dict[str, Any], str]:
    """The spec of the previous release: one uid, no capabilities, a top-level socket."""
    old = dict(kwargs)
    old["user"] = f"{uid}:{gid}"
    old.pop("cap_add")
    command = list(old["command"])
    cut = command.index("--agent-user")
    del command[cut : cut + 2]
    command[command.index("--listen") + 1] = f"unix:{SOCKET_MOUNT}/runner.sock"
    old["command"] = command
    return old, "runner.sock"


def one(client: Any, mode: str, uid: int, gid: int) -> float:
    base = Path(tempfile.mkdtemp(prefix="agc-uids-", dir="/tmp"))
    base.chmod(0o755)
    spec = _folders(base, uid, gid)
    kwargs = container_kwargs(spec, ContainerSettings(image=IMAGE, uid=uid, gid=gid))
    socket = RUNNER_SOCKET
    if mode == "A":
        kwargs, socket = _before(kwargs, uid, gid)
    kwargs["name"] = f"agc-uids-{mode}-{os.getpid()}"
    started = time.perf_counter()
    container = client.containers.create(**kwargs)
    try:
        container.start()
        path = base / "s" / socket
        headers = {"Authorization": f"Bearer {TOKEN}"}
        deadline = started + 120
        while time.perf_counter() < deadline:
            if path.exists():
                try:
                    transport = httpx.HTTPTransport(uds=str(path))
                    with httpx.Client(transport=transport, base_url="http://r") as http:
                        health = http.get("/health", headers=headers, timeout=2).json()
                    if health.get("status") == "ok":
                        return time.perf_counter() - started
                    if health.get("status") == "failed":
                        raise RuntimeError(f"{mode}: {health.get('detail')}")
                except (httpx.HTTPError, ValueError):
                    pass
            time.sleep(0.02)
        raise RuntimeError(f"{mode}: the runner never became ok: {container.logs()[-2000:]}")
    finally:
        container.remove(force=True)
        shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--uid", type=int, default=os.geteuid() or 65534)
    args = parser.parse_args()
    uid = gid = args.uid
    client = docker.from_env()
    times: dict[str, list[float]] = {"A": [], "B": []}
    one(client, "B", uid, gid)  # warm the page cache
    for i in range(args.runs):
        for mode in ("A", "B") if i % 2 == 0 else ("B", "A"):
            times[mode].append(one(client, mode, uid, gid))
            print(f"  {mode} {len(times[mode]):2d}: {1000 * times[mode][-1]:7.1f} ms")
    a, b = statistics.median(times["A"]), statistics.median(times["B"])
    print(f"before (one uid)        p50 {1000 * a:7.1f} ms")
    print(f"now (root runner + uid) p50 {1000 * b:7.1f} ms")
    print(f"now / before: {b / a:.3f}")
    out = Path(__file__).parent / "results" / "runner_uids.json"
    out.write_text(
        json.dumps(
            {
                "when": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                "runs": args.runs,
                "ms": {k: [round(1000 * v, 1) for v in vs] for k, vs in times.items()},
                "p50_ms": {"before": round(1000 * a, 1), "now": round(1000 * b, 1)},
                "ratio": round(b / a, 3),
            },
            indent=1,
        )
        + "\n"
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
