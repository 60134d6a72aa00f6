"""The notebook widget's cost: replaying a long session and following a live stream.

One command measures, in one process, against the bare state fold (``SessionView``) as
the baseline:

- replay: a session history of ``--turns`` turns (each: a prompt, ``--deltas`` text
  deltas, the whole message, ``--tools`` tool calls with results, usage, done) folded by
  ``SessionView`` alone, then drawn by a fresh ``AgentWidget`` the way ``%agent show``
  does (one batch);
- live: the same events applied one at a time, as a turn streams in (coalesced renders).

Reported: milliseconds, the ratio to the baseline, and the tool rows drawn (each is an
ipywidget, and creating those is most of the cost).  Results go to
``benchmarks/results/widget_replay.json``.

    python benchmarks/widget_replay.py --turns 100
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agcluster_jupyter.events import Event, parse_event
from agcluster_jupyter.kernel.widgets import AgentWidget, SessionView

RESULTS = Path(__file__).resolve().parent / "results" / "widget_replay.json"


def history(turns: int, deltas: int, tools: int) -> list[Event]:
    events: list[Event] = []

    def add(**spec: Any) -> None:
        seq = len(events) + 1
        stamp = {"seq": seq, "session_id": "bench", "ts": "2026-11-26T10:00:00+00:00"}
        events.append(parse_event({**stamp, **spec}))

    for turn in range(turns):
        add(type="status", state="busy")
        add(type="message", role="user", text=f"question {turn}")
        for _ in range(deltas):
            add(type="text_delta", text="some streamed words ")
        add(type="message", role="assistant", text="some streamed words " * deltas)
        for call in range(tools):
            tool_id = f"t{turn}-{call}"
            add(type="tool_use", tool_use_id=tool_id, name="Bash", input={"command": "ls -la"})
            add(type="tool_result", tool_use_id=tool_id, output="file.txt\n" * 20)
        add(type="result", usage={"input_tokens": 1000, "output_tokens": 200}, cost_usd=0.01)
        add(type="status", state="idle")
        add(type="done")
    return events


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 1)


def run(turns: int, deltas: int, tools: int) -> dict[str, Any]:
    events = history(turns, deltas, tools)
    start = time.perf_counter()
    view = SessionView("bench")
    view.extend(events)
    baseline = _ms(start)

    start = time.perf_counter()
    replayed = AgentWidget(None, "bench")
    replayed.extend(events)
    replay = _ms(start)

    start = time.perf_counter()
    live = AgentWidget(None, "bench")
    for event in events:
        live.apply(event)
    live.flush()
    streamed = _ms(start)
    assert live.view.markdown() == replayed.view.markdown() == view.markdown()
    replayed.close()
    live.close()

    return {
        "params": {"turns": turns, "deltas": deltas, "tools": tools, "events": len(events)},
        "baseline_fold_ms": baseline,
        "replay_ms": replay,
        "replay_ratio": round(replay / max(baseline, 0.1), 1),
        "live_ms": streamed,
        "live_per_event_us": round(streamed * 1000 / len(events), 1),
        "tool_rows": len(replayed.timeline.children),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=100)
    parser.add_argument("--deltas", type=int, default=10)
    parser.add_argument("--tools", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    results = run(args.turns, args.deltas, args.tools)
    results["machine"] = {"python": platform.python_version(), "cpus": _cpus()}
    results["when"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    if not args.quiet:
        print(json.dumps(results, indent=2))
    return 0


def _cpus() -> int:
    import os

    return os.cpu_count() or 0


if __name__ == "__main__":
    raise SystemExit(main())
