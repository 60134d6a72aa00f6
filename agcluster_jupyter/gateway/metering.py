"""Metering: read the usage fields out of an Anthropic response as it streams by."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .pricing import Pricing

__all__ = ["CallUsage", "StreamMeter", "Usage", "usage_from_message"]


@dataclass
class Usage:
    """What a session used: tokens (cache reads and writes count as input) and dollars."""

    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0

    @property
    def total(self) -> int:
        return self.input_tokens + self.output_tokens

    def add(self, other: Usage) -> None:
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cost_usd += other.cost_usd

    def to_json(self) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.total,
        }


@dataclass
class CallUsage:
    """The usage fields of one response, as the API reports them."""

    fields: dict[str, int] = field(default_factory=dict)

    def update(self, usage: dict[str, Any], *, cumulative: bool = False) -> None:
        """Take the fields of ``usage``; ``cumulative`` (a ``message_delta``): a field
        only grows, so a 0 or a missing field there leaves the earlier figure."""
        for key in (
            "input_tokens",
            "output_tokens",
            "cache_creation_input_tokens",
            "cache_read_input_tokens",
        ):
            value = usage.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
                before = self.fields.get(key, 0)
                self.fields[key] = max(before, int(value)) if cumulative else int(value)

    def usage(self, model: str, pricing: Pricing) -> Usage:
        f = self.fields
        return Usage(
            input_tokens=sum(
                f.get(k, 0)
                for k in (
                    "input_tokens",
                    "cache_creation_input_tokens",
                    "cache_read_input_tokens",
                )
            ),
            output_tokens=f.get("output_tokens", 0),
            cost_usd=pricing.cost(model, **f),
        )


def usage_from_message(message: dict[str, Any]) -> CallUsage:
    """The usage of a whole (non-streaming) Messages API response."""
    call = CallUsage()
    usage = message.get("usage")
    if isinstance(usage, dict):
        call.update(usage)
    return call


class StreamMeter:
    """Feed it the raw SSE bytes of a streamed response; it keeps the usage seen so far.

    ``message_start`` carries the input tokens, ``message_delta`` the (cumulative)
    output tokens.  The bytes themselves pass through untouched; this only watches.
    """

    def __init__(self) -> None:
        self.call = CallUsage()
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
            usage = (data.get("message") or {}).get("usage")
            if isinstance(usage, dict):
                self.call.update(usage)
        elif kind == "message_delta":
            usage = data.get("usage")
            if isinstance(usage, dict):
                self.call.update(usage, cumulative=True)
