"""Two Jupyter servers of one user on one ``state_root`` (one ``jupyter lab`` per project,
the default state in the user's data dir): each owns its sessions.  Server B, started
and restarted next to a live server A, never lists, adopts, reaps or stops A's session;
once A is gone (killed), the next start of B takes A's session over and carries on.
The local provider here; tests/e2e/test_docker_two_servers.py runs the same on docker."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from typing import Any

import pytest

from agcluster_jupyter.testing.jupyter import JupyterServerProcess
from agcluster_jupyter.testing.server import ScriptedModelServer

from ..support import TEST_KEY, bash_scenario, serving

pytestmark = pytest.mark.cli

SHARED = ("state_root", "agent_state_root", "socket_root", "workspace_root")


def _sharing(first: JupyterServerProcess, second: JupyterServerProcess) -> None:
    """Point ``second`` at ``first``'s state (its own root_dir and port stay its own)."""
    for trait in SHARED:
        second.set_option(f"AgClusterApp.{trait}", first.folders[trait])


def _ids(server: JupyterServerProcess) -> set[str]:
    return {s["session_id"] for s in server.get("agents/sessions").json()["sessions"]}


def _chat(server: JupyterServerProcess, sid: str, message: str) -> list[dict[str, Any]]:
    reply = server.post(f"agents/{sid}/chat", {"message": message})
    assert reply.status_code == 200, reply.text
    events: list[dict[str, Any]] = reply.json()["events"]
    assert events[-1]["type"] == "done" and not [e for e in events if e["type"] == "error"]
    return events


def check_two_servers(model: ScriptedModelServer, provider: str, *extra: str) -> None:
    model.add_scenarios([bash_scenario("note it", "echo $RANDOM >> notes.txt")])
    args = ["--AgClusterApp.stop_sessions_on_shutdown=True", *extra]
    a = JupyterServerProcess(model.url, TEST_KEY, provider=provider, extra_args=args)
    with serving(a):
        sid = a.post("agents/launch", {"config_id": "code-assistant"}).json()["session_id"]
        _chat(a, sid, "note it please")
        for round_ in range(2):  # B starts, and restarts, next to a live A
            b = JupyterServerProcess(model.url, TEST_KEY, provider=provider, extra_args=args)
            _sharing(a, b)
            with serving(b):
                assert sid not in _ids(b), f"B lists A's session (round {round_})"
                assert b.get(f"agents/sessions/{sid}").status_code == 404
                assert "0 sessions recovered" in b.tail(20000)
            # B stopped (its sessions with it): A's session is alive and works
            details = a.get(f"agents/sessions/{sid}").json()
            assert details["state"] in ("ready", "idle"), details
            _chat(a, sid, "note it please")
        # A dies without a word; the next server on this state takes its session over
        assert a.proc is not None
        a.proc.send_signal(signal.SIGKILL)  # its runners live on, as after a crash
        a.proc.wait(30)
        b = JupyterServerProcess(model.url, TEST_KEY, provider=provider, extra_args=args)
        _sharing(a, b)
        with serving(b):
            assert sid in _ids(b)
            details = b.get(f"agents/sessions/{sid}").json()
            assert details["state"] in ("ready", "idle", "stopped"), details
            _chat(b, sid, "note it please")  # re-adopted (or resumed) by B


@pytest.fixture
def model() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer(api_key=TEST_KEY) as server:
        yield server


def test_each_server_owns_its_sessions_on_the_local_provider(model: ScriptedModelServer) -> None:
    check_two_servers(model, "local")
