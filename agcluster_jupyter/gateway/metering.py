"""Token metering: read the usage fields out of an Anthropic response as it streams by."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = ["StreamMeter", "Usage", "usage_from_message"]


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def total(self) -> int:
        return self.input_tokens + self.output_tokens

    def add(self, other: Usage) -> None:
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens

    def to_json(self) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.total,
        }


def _input_tokens(usage: dict[str, Any]) -> int:
    # cache reads and writes are input the model processed, and they are billed
    return sum(
        int(usage.get(key) or 0)
        for key in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    )


def usage_from_message(message: dict[str, Any]) -> Usage:
    """Usage of a whole (non-streaming) Messages API response."""
    usage = message.get("usage") or {}
    return Usage(_input_tokens(usage), int(usage.get("output_tokens") or 0))


class StreamMeter:
    """Feed it the raw SSE bytes of a streamed response; it keeps the usage seen so far.

    ``message_start`` carries the input tokens, ``message_delta`` the (cumulative)
    output tokens.  The bytes themselves pass through untouched; this only watches.
    """

    def __init__(self) -> None:
        self.usage = Usage()
        self._buffer = b""

    def feed(self, chunk: bytes) -> None:
        self._buffer += chunk
        while b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            if line.startswith(b"data:"):
                self._data(line[5:].strip())

    def _data(self, raw: bytes) -> None:
        try:
            data = json.loads(raw)
        except ValueError:
            return
        if not isinstance(data, dict):
            return
        kind = data.get("type")
        if kind == "message_start":
            usage = (data.get("message") or {}).get("usage") or {}
            self.usage.input_tokens = _input_tokens(usage)
            self.usage.output_tokens = int(usage.get("output_tokens") or 0)
        elif kind == "message_delta":
            usage = data.get("usage") or {}
            if "output_tokens" in usage:
                self.usage.output_tokens = int(usage["output_tokens"] or 0)
            if usage.get("input_tokens"):
                self.usage.input_tokens = max(self.usage.input_tokens, _input_tokens(usage))
