"""Helpers shared by the test modules."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["TEST_KEY", "descendants", "parse_sse", "runner_pids"]

#: the key the gateway adds upstream; the scripted model accepts only this one
TEST_KEY = "scripted-model-test-key"


def parse_sse(text: str) -> list[dict[str, Any]]:
    """The events of an SSE body (heartbeat comments skipped), checking the framing."""
    events = []
    for frame in text.split("\n\n"):
        lines = [line for line in frame.split("\n") if line and not line.startswith(":")]
        if not lines:
            continue
        fields = dict(line.split(": ", 1) for line in lines)
        data = json.loads(fields["data"])
        assert fields["event"] == data["type"]
        assert int(fields["id"]) == data["seq"]
        events.append(data)
    return events


def runner_pids(under: str = "") -> set[int]:
    """Processes running the agent runner module (to prove none is left behind), only
    those whose command line mentions ``under`` when given."""
    pids = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if b"agcluster_jupyter.runner" in cmdline and under.encode() in cmdline:
                pids.add(int(entry))
    return pids


def descendants(pid: int) -> set[int]:
    """``pid`` and every process below it (the runner, the CLI, its tools)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            children.setdefault(int(stat[1]), []).append(int(entry))
    found, todo = set(), [pid]
    while todo:
        current = todo.pop()
        found.add(current)
        todo.extend(children.get(current, []))
    return found
