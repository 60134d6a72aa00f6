"""The agent runner killed mid-turn, and the Jupyter server stopped or crashing mid-turn
(local provider: the runner is a process of its own session, like a container)."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from agcluster_jupyter.testing.jupyter import runner_pids

from ..integration.test_restart import Server
from ..support import bash_scenario, chat_sse, parse_sse
from .helpers import LEAN_SERVER, assert_gapless, conversation, event_log, wait_until

pytestmark = pytest.mark.cli

#: a turn that leaves a file in the workspace, then runs long enough to break it
SLOW_TOOL = bash_scenario("work slowly", "echo kept > kept.txt; sleep 60")


async def test_runner_killed_mid_turn_fails_the_session_then_resumes(
    api: Any, launched: Any, scripted_model: Any
) -> None:
    """The user sees the turn end at once with an ``error`` (``runner_lost``, "the
    workspace is intact") and ``done``, the session ``failed``; the workspace file, the
    log (gapless) and the conversation survive, and the next chat starts a new runner
    that remembers the first turn."""
    scripted_model.add_scenarios([SLOW_TOOL])
    session = await launched()
    sid = session["session_id"]
    assert (await chat_sse(api, sid, "hello, remember the word PELICAN"))[-1]["type"] == "done"
    turn = asyncio.ensure_future(chat_sse(api, sid, "work slowly please"))
    kept = Path(session["workspace"]) / "kept.txt"
    await wait_until(kept.exists, what="the tool to start")
    runner = int(session["agent_id"].removeprefix("local-"))
    os.kill(runner, signal.SIGKILL)

    events = await asyncio.wait_for(turn, 20)
    assert [e["type"] for e in events[-2:]] == ["error", "done"] or events[-1]["type"] == "done"
    (error,) = [e for e in events if e["type"] == "error"]
    assert error["code"] == "runner_lost" and "workspace is intact" in error["message"]
    details = await api(f"agents/sessions/{sid}")
    assert details["state"] == "failed" and "next message restarts" in details["state_detail"]
    assert kept.read_text() == "kept\n"
    # the runner's process group (the CLI, the sleeping tool) is gone with it
    await wait_until(lambda: not runner_pids(str(Path(session["workspace"]).parents[1])))
    log = await event_log(api, sid)
    assert_gapless(log)
    assert log[-1]["type"] == "status" and log[-1]["state"] == "failed"

    scripted_model.reset()
    events = await chat_sse(api, sid, "what do you remember?")
    assert events[-1]["type"] == "done" and not [e for e in events if e["type"] == "error"]
    assert (await api(f"agents/sessions/{sid}"))["agent_id"] != session["agent_id"]
    request = next(r for r in scripted_model.message_requests if "remember?" in r.prompt)
    assert "PELICAN" in conversation(request), "the conversation was lost"
    assert_gapless(await event_log(api, sid))


async def test_a_turn_stopped_by_delete_ends_with_done(
    api: Any, launched: Any, scripted_model: Any
) -> None:
    """DELETE during a turn: the chat stream ends with ``done`` (every turn ends with one;
    clients wait for it), and the session is ``stopped``."""
    scripted_model.add_scenarios([SLOW_TOOL])
    session = await launched()
    sid = session["session_id"]
    turn = asyncio.ensure_future(chat_sse(api, sid, "work slowly please"))
    await wait_until((Path(session["workspace"]) / "kept.txt").exists, what="the tool")
    await api(f"agents/sessions/{sid}", method="DELETE")
    assert (await api(f"agents/sessions/{sid}"))["state"] == "stopped"
    try:
        events = await asyncio.wait_for(turn, 5)
    finally:
        turn.cancel()
    assert events[-1]["type"] == "done"


# -- the server stopped or crashing mid-turn ------------------------------------------------

#: a turn that leaves a file, then waits for the test to let it finish (``touch go``)
GATED_TOOL = {
    "match": "gated work",
    "steps": [
        [
            {
                "tool_use": {
                    "name": "Bash",
                    "input": {
                        "command": "echo kept > kept.txt; while [ ! -e go ]; do sleep 0.1; done"
                    },
                }
            }
        ]
    ],
    "final": "Finished the gated work.",
}


class BackgroundChat:
    """``POST chat`` with SSE in a thread, keeping what arrived before the stream ended."""

    def __init__(self, server: Server, session_id: str, message: str) -> None:
        self.events: list[dict[str, Any]] = []
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(server, session_id, message))
        self._thread.start()

    def _run(self, server: Server, session_id: str, message: str) -> None:
        headers = {**server.headers, "Accept": "text/event-stream"}
        url = server.url + f"agents/{session_id}/chat"
        try:
            with httpx.stream(
                "POST", url, json={"message": message}, headers=headers, timeout=60
            ) as response:
                frame = ""
                for line in response.iter_lines():
                    if line:
                        frame += line + "\n"
                    elif frame:
                        self.events += parse_sse(frame)
                        frame = ""
        except httpx.HTTPError as exc:
            self.error = exc

    def join(self, timeout: float = 30) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the chat stream did not end"


def follow_until_done(server: Server, session_id: str, last_event_id: int) -> list[dict[str, Any]]:
    """Reconnect to the session's events with ``Last-Event-ID``, until a ``done``."""
    headers = {**server.headers, "Last-Event-ID": str(last_event_id)}
    events: list[dict[str, Any]] = []
    with httpx.stream(
        "GET", server.url + f"agents/{session_id}/events", headers=headers, timeout=60
    ) as response:
        frame = ""
        for line in response.iter_lines():
            if line:
                frame += line + "\n"
                continue
            if frame:
                events += parse_sse(frame)
                frame = ""
            if events and events[-1]["type"] == "done":
                break
    return events


@pytest.fixture
def gated(scripted_model: Any) -> Any:
    scripted_model.add_scenarios([GATED_TOOL])
    return scripted_model


def start_gated_turn(server: Server, session: dict[str, Any]) -> tuple[BackgroundChat, Path]:
    sid = session["session_id"]
    assert server.chat(sid, "hello, remember the word PELICAN")[-1]["type"] == "done"
    chat = BackgroundChat(server, sid, "gated work please")
    workspace = Path(session["workspace"])
    asyncio.run(wait_until((workspace / "kept.txt").exists, what="the tool to start"))
    return chat, workspace


def assert_resumes(server: Server, session_id: str, model: Any) -> None:
    """The next chat works and the model hears the whole conversation again."""
    model.reset()
    events = server.chat(session_id, "what do you remember?")
    assert events[-1]["type"] == "done" and not [e for e in events if e["type"] == "error"]
    request = next(r for r in model.message_requests if "remember?" in r.prompt)
    assert "PELICAN" in conversation(request), "the conversation was lost"
    log = server.events(session_id)
    assert_gapless(log)


def test_server_stopped_mid_turn_stops_the_turn_and_the_session_resumes(
    server_factory: Any, gated: Any, agent_dirs: dict[str, Path]
) -> None:
    """An operator stops Jupyter (SIGTERM) during a turn, with the default
    ``stop_sessions_on_shutdown``: the chat stream ends, the runner is stopped with the
    server, and the log closes the turn (``done``).  After a restart the session is
    ``stopped`` with its workspace and whole log, and the next chat resumes the
    conversation in a new runner."""
    first = server_factory(*LEAN_SERVER)
    session = first.post("agents/launch", {"config_id": "code-assistant"}).json()
    sid = session["session_id"]
    chat, workspace = start_gated_turn(first, session)
    assert first.stop() == []
    chat.join()
    assert not runner_pids(str(agent_dirs["base"])), "the runner outlived the server"
    seen = [e["type"] for e in chat.events]
    # the turn's tool call, the session stopping, and the turn's done: the stream ends
    assert "tool_use" in seen and seen[-1] == "done", seen
    stopping = [e for e in chat.events if e["type"] == "status" and e["state"] == "stopping"]
    assert stopping and stopping[-1]["seq"] < chat.events[-1]["seq"], chat.events

    second = server_factory(*LEAN_SERVER)
    details = second.get(f"agents/sessions/{sid}").json()
    assert details["state"] == "stopped", details
    log = second.events(sid)
    assert_gapless(log)
    assert log[: len(chat.events)] != [] and all(e in log for e in chat.events)
    assert (workspace / "kept.txt").read_text() == "kept\n"
    assert_resumes(second, sid, gated)


def test_server_crashing_mid_turn_readopts_the_runner_and_the_turn_completes(
    server_factory: Any, gated: Any, agent_dirs: dict[str, Path]
) -> None:
    """Jupyter dies (SIGKILL) during a turn: the chat stream breaks, but the runner (its
    own process group) keeps working.  The restarted server re-adopts it; a client that
    reconnects with ``Last-Event-ID`` gets the rest of the turn (the tool's result, the
    answer, ``done``) with no gap and no repeat, and the conversation goes on."""
    first = server_factory(*LEAN_SERVER)
    session = first.post("agents/launch", {"config_id": "code-assistant"}).json()
    sid = session["session_id"]
    chat, workspace = start_gated_turn(first, session)
    runners = runner_pids(str(agent_dirs["base"]))
    assert first.proc is not None
    first.proc.kill()
    first.proc.wait()
    chat.join()
    assert chat.error is not None or chat.events[-1]["type"] != "done"
    assert runner_pids(str(agent_dirs["base"])) == runners, "the runner died with the server"

    second = server_factory(*LEAN_SERVER)
    assert second.get(f"agents/sessions/{sid}").json()["state"] == "busy"
    (workspace / "go").touch()  # the tool may finish now, through the new server's gateway
    last = chat.events[-1]["seq"]
    rest = follow_until_done(second, sid, last)
    assert_gapless(rest, first=last + 1)
    assert "Finished the gated work." in [e.get("text") for e in rest if e["type"] == "message"]
    assert not [e for e in rest if e["type"] == "error"]
    log = second.events(sid)
    assert log == [*log[:last], *rest][: len(log)] and log[last : last + len(rest)] == rest
    assert_resumes(second, sid, gated)
    assert runner_pids(str(agent_dirs["base"])) == runners, "the same runner served on"
