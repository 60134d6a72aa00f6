"""The model misbehaving mid-conversation: HTTP 429, 529 and 500 answers and a stream cut
off in the middle, every time or only once.  Through the whole stack: scripted model →
gateway → claude CLI → runner → session log → the chat's SSE stream."""

from __future__ import annotations

from typing import Any

import pytest

from ..support import chat_sse
from .helpers import assert_gapless, conversation, event_log

pytestmark = pytest.mark.cli

#: fault → the scripted step that serves it every time (the text is never heard)
ALWAYS = {
    "429": {"error": 429},
    "529": {"error": 529},
    "500": {"error": 500},
    "broken stream": {"broken_stream": 2},
}


def scenario(name: str, fault: dict[str, Any]) -> dict[str, Any]:
    # after a failed turn the CLI sends the failed prompt and the next one as one user
    # message (the API wants turns to alternate): match the latest line only
    return {
        "match": f"re:(^|\n)fault {name}:[^\n]*$",
        "steps": [[fault, "one two three four five six seven eight nine"]],
        "final": "unused",
    }


def retries(events: list[dict[str, Any]]) -> list[str]:
    return [e["detail"] for e in events if e["type"] == "status" and "retry" in e["detail"]]


REPLY = "one two three four five six seven eight nine"


def of_type(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == kind]


async def test_model_errors_end_the_turn_with_the_status_and_the_session_goes_on(
    api: Any, launched: Any, scripted_model: Any
) -> None:
    """Every time: the user sees the CLI's retries as ``status`` details ("model API
    529; retry 1/2 in 0.6s"), then an ``error`` naming the HTTP status and ``done``; a
    stream that keeps breaking ends as the gateway's 502.  The session stays usable
    (``idle``, not failed).  Once only: the retry succeeds and the user gets the answer
    without an error (after a cut stream the deltas repeat the cut part, the ``message``
    is the whole answer once).  Afterwards the model still hears every earlier prompt,
    failed ones included, and the log is gapless."""
    scripted_model.add_scenarios(
        [scenario(name, fault) for name, fault in ALWAYS.items()]
        + [scenario(f"once {name}", {**fault, "times": 1}) for name, fault in ALWAYS.items()]
    )
    sid = (await launched())["session_id"]
    for name in ALWAYS:
        events = await chat_sse(api, sid, f"fault {name}: remember {name.upper()}")
        status = "502" if name == "broken stream" else name
        (error,) = of_type(events, "error")
        assert error["code"] == f"api_error_{status}", error
        assert f"HTTP {status}" in error["message"]
        assert retries(events), f"{name}: no retry shown"
        assert REPLY not in [e["text"] for e in of_type(events, "message")]
        assert events[-1]["type"] == "done"
        details = await api(f"agents/sessions/{sid}")
        assert details["state"] == "idle", (name, details["state"], details["state_detail"])
    for name in ALWAYS:
        events = await chat_sse(api, sid, f"fault once {name}: remember ONCE-{name.upper()}")
        assert not of_type(events, "error"), name
        (retry,) = retries(events)
        assert retry.startswith("model API") and "retry 1/2" in retry
        assert [e["text"] for e in of_type(events, "message") if e["role"] == "assistant"] == [
            REPLY
        ]
        assert "".join(e["text"] for e in of_type(events, "text_delta")).endswith(REPLY)
        assert events[-1]["type"] == "done"

    scripted_model.reset()
    events = await chat_sse(api, sid, "what do you remember?")
    assert events[-1]["type"] == "done" and not of_type(events, "error")
    request = next(r for r in scripted_model.message_requests if "remember?" in r.prompt)
    heard = conversation(request)
    for name in ALWAYS:
        assert f"remember {name.upper()}" in heard and f"ONCE-{name.upper()}" in heard, name
    assert heard.count(REPLY) == len(ALWAYS), "each answer once in the conversation"
    assert_gapless(await event_log(api, sid))
