"""Anthropic Messages API wire shapes: content blocks, the SSE event sequence, JSON
messages, error bodies and rough token counts. Pure functions; the server does the I/O.

The event sequence is the one the claude CLI accepts (``event:`` lines are required):
message_start → (content_block_start → content_block_delta… → content_block_stop)… →
message_delta (stop_reason, usage.output_tokens) → message_stop.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from .script import Reply, TextBlock, ThinkingBlock

__all__ = [
    "ERROR_TYPES",
    "Event",
    "content_blocks",
    "error_body",
    "estimate_tokens",
    "format_sse",
    "message_json",
    "new_id",
    "output_tokens",
    "stream_events",
]

JSON = dict[str, Any]
Event = tuple[str, JSON]

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
_TEXT_CHUNK = re.compile(r"\S+\s*|\s+")
_WORDS_PER_DELTA = 3
_JSON_CHUNK = 48


def new_id(prefix: str) -> str:
    return f"{prefix}_scripted_{uuid.uuid4().hex[:20]}"


def estimate_tokens(value: Any) -> int:
    """About four characters a token, as a rough stand-in for a tokenizer."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return max(1, len(text) // 4)


def content_blocks(reply: Reply, make_id: Callable[[str], str] = new_id) -> list[JSON]:
    """The API content blocks of a reply, tool calls with fresh ids."""
    out: list[JSON] = []
    for block in reply.blocks:
        if isinstance(block, TextBlock):
            out.append({"type": "text", "text": block.text})
        elif isinstance(block, ThinkingBlock):
            # The signature is opaque to the CLI; it only sends it back.
            out.append({"type": "thinking", "thinking": block.thinking, "signature": "scripted"})
        else:
            out.append(
                {
                    "type": "tool_use",
                    "id": make_id("toolu"),
                    "name": block.name,
                    "input": block.input,
                }
            )
    return out


def output_tokens(content: Sequence[JSON]) -> int:
    return sum(
        estimate_tokens(b.get("text") or b.get("thinking") or b.get("input")) for b in content
    )


def _usage(input_tokens: int, output: int) -> JSON:
    return {
        "input_tokens": input_tokens,
        "output_tokens": output,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }


def _stop_reason(content: Sequence[JSON]) -> str:
    return "tool_use" if any(b["type"] == "tool_use" for b in content) else "end_turn"


def message_json(content: Sequence[JSON], model: str, message_id: str, input_tokens: int) -> JSON:
    """The whole response for ``stream: false``."""
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": list(content),
        "stop_reason": _stop_reason(content),
        "stop_sequence": None,
        "usage": _usage(input_tokens, output_tokens(content)),
    }


def _chunks(text: str) -> list[str]:
    pieces = _TEXT_CHUNK.findall(text)
    return [
        "".join(pieces[i : i + _WORDS_PER_DELTA]) for i in range(0, len(pieces), _WORDS_PER_DELTA)
    ] or [""]


def _block_events(index: int, block: JSON) -> Iterator[Event]:
    kind = block["type"]
    if kind == "text":
        yield (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": index,
                "content_block": {"type": "text", "text": ""},
            },
        )
        for piece in _chunks(block["text"]):
            delta = {"type": "text_delta", "text": piece}
            yield (
                "content_block_delta",
                {"type": "content_block_delta", "index": index, "delta": delta},
            )
    elif kind == "thinking":
        yield (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": index,
                "content_block": {"type": "thinking", "thinking": "", "signature": ""},
            },
        )
        for piece in _chunks(block["thinking"]):
            delta = {"type": "thinking_delta", "thinking": piece}
            yield (
                "content_block_delta",
                {"type": "content_block_delta", "index": index, "delta": delta},
            )
        delta = {"type": "signature_delta", "signature": block["signature"]}
        yield "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
    else:
        yield (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": index,
                "content_block": {
                    "type": "tool_use",
                    "id": block["id"],
                    "name": block["name"],
                    "input": {},
                },
            },
        )
        raw = json.dumps(block["input"], ensure_ascii=False)
        for start in range(0, len(raw), _JSON_CHUNK):
            delta = {"type": "input_json_delta", "partial_json": raw[start : start + _JSON_CHUNK]}
            yield (
                "content_block_delta",
                {"type": "content_block_delta", "index": index, "delta": delta},
            )
    yield "content_block_stop", {"type": "content_block_stop", "index": index}


def stream_events(
    content: Sequence[JSON], model: str, message_id: str, input_tokens: int
) -> Iterator[Event]:
    """The SSE events of one streamed response, in order."""
    yield (
        "message_start",
        {
            "type": "message_start",
            "message": {
                "id": message_id,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": _usage(input_tokens, 1),
            },
        },
    )
    for index, block in enumerate(content):
        yield from _block_events(index, block)
    yield (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": _stop_reason(content), "stop_sequence": None},
            # Cumulative usage, as the API sends it; the CLI takes the input count from here too.
            "usage": _usage(input_tokens, output_tokens(content)),
        },
    )
    yield "message_stop", {"type": "message_stop"}


def format_sse(event: str, data: JSON) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def error_body(status: int, message: str) -> JSON:
    """An Anthropic-shaped error, e.g. ``{"type": "error", "error": {"type":
    "rate_limit_error", ...}}``."""
    kind = ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": message}}
