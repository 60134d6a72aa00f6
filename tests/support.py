"""Helpers shared by the test modules."""

from __future__ import annotations

import json
from typing import Any

from agcluster_jupyter.testing.jupyter import descendants, runner_pids

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
