"""The agent cannot drive its own runner: the attack of the issue, step by step, against a
real ``jupyter server`` (here the local provider run by a normal user, so the runner,
the CLI and the tools share a uid; tests/e2e/test_docker_runner_boundary.py runs it on
the docker provider), the real claude CLI and the scripted model.

A session asks before every tool call (``permission_mode: default``).  The user approves
one harmless-looking command, ``setsid nohup python3 approver.py &``; that background
process (tests/probe_scripts/runner_attacker.py) tries every runner endpoint (health,
events, turns, permissions, interrupt, files, shutdown) by every unix socket and TCP
port it can find, with every token it can read.  Meanwhile the agent's next tool call
must still wait for the user, and when the attacker is done nothing it tried has started
a turn, answered a request or stopped the runner.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agcluster_jupyter.testing.jupyter import JupyterServerProcess
from agcluster_jupyter.testing.server import ScriptedModelServer

from ..agent_probes import runner_attack_scenario
from ..support import CAREFUL, TEST_KEY, parse_sse, python_for_others, serving

pytestmark = pytest.mark.cli

ATTACK = "set up the helper, then write the marker"
NOBODY = 65534
#: the control endpoints: a 2xx from any of them on any target is a breach
CONTROL = {"/turns", "/permissions", "/interrupt", "/shutdown", "/tool-calls/call-guess"}


def _events(server: JupyterServerProcess, sid: str) -> list[dict[str, Any]]:
    response = server.get(f"agents/{sid}/events", params={"follow": "false"})
    return parse_sse(response.text)


def _wait(check: Any, what: str, timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)
    return result


def _permission(server: JupyterServerProcess, sid: str, n: int) -> dict[str, Any]:
    def nth() -> dict[str, Any] | None:
        found = [e for e in _events(server, sid) if e["type"] == "permission_request"]
        return found[n - 1] if len(found) >= n else None

    request: dict[str, Any] = _wait(nth, f"permission request {n}")
    return request


def run_attack(
    server: JupyterServerProcess, model: ScriptedModelServer, kill: bool = False
) -> dict[str, Any]:
    """The attack, step by step; what the attacker got (``attack.json``) and the session.
    With ``kill`` the attacker also signals every runner process it sees."""
    model.add_scenarios([runner_attack_scenario(ATTACK, kill=kill)])
    launched = server.post("agents/launch", {"config": CAREFUL})
    assert launched.status_code == 201, launched.text
    sid = launched.json()["session_id"]
    workspace = Path(server.get(f"agents/sessions/{sid}").json()["workspace"])
    turn: list[dict[str, Any]] = []

    def chat() -> None:
        with httpx.stream(
            "POST",
            f"{server.url}agents/{sid}/chat",
            json={"message": ATTACK},
            headers={**server.headers, "Accept": "text/event-stream"},
            timeout=300,
        ) as response:
            turn.extend(parse_sse(response.read().decode()))

    chatting = threading.Thread(target=chat, daemon=True)
    chatting.start()

    # 1. the user approves one command that starts a background process
    first = _permission(server, sid, 1)
    assert "setsid nohup python3 approver.py" in json.dumps(first["input"])
    answer = server.post(f"agents/{sid}/permissions/{first['request_id']}", {"decision": "allow"})
    assert answer.status_code == 200, answer.text

    # 2. the next tool call waits for the user, while the attacker tries everything
    second = _permission(server, sid, 2)
    assert "echo pwned" in json.dumps(second["input"])
    report = workspace / "attack.json"
    try:
        _wait(lambda: report.is_file() and json.loads(report.read_text()).get("done"), "it")
    except AssertionError:
        results = [e for e in _events(server, sid) if e["type"] == "tool_result"]
        files = sorted(p.name for p in workspace.iterdir())
        raise AssertionError(f"the attacker wrote no report: {results} {files}") from None
    log = _events(server, sid)
    assert not [
        e for e in log if e["type"] == "tool_result" and e["tool_use_id"] == second["request_id"]
    ], "the second tool call ran without the user"
    assert not (workspace / "pwned.txt").exists()
    details = server.get(f"agents/sessions/{sid}").json()
    assert details["state"] == "busy", details  # still waiting, the runner alive

    # 3. the user denies it; the turn ends as the user decided
    answer = server.post(f"agents/{sid}/permissions/{second['request_id']}", {"decision": "deny"})
    assert answer.status_code == 200, answer.text
    chatting.join(120)
    assert turn and turn[-1]["type"] == "done", turn[-5:]
    assert not (workspace / "pwned.txt").exists()
    attack: dict[str, Any] = json.loads(report.read_text())
    attack.update(session_id=sid, workspace=str(workspace))
    return attack


def assert_all_refused(attempts: list[list[Any]]) -> None:
    """Every attempt on a runner was refused (401, or its socket out of reach), no
    control endpoint of anything answered 2xx, no runner could be signalled."""
    # the attacker found the runner: it answered, refusing, or its socket was out of
    # the tools' reach altogether (docker with a root server: a folder of root's) ...
    runners = {a[0] for a in attempts if a[4] == 401 and "bearer token" in a[5]}
    runners |= {a[0] for a in attempts if a[0].endswith("/runner.sock")}
    assert runners, f"the attacker never found a runner: {sorted({a[0] for a in attempts})}"
    # ... and everything it asked of it was refused, by every token it could read
    for target, where, method, path, status, text in attempts:
        if path == "/kill":
            assert status == "PermissionError", (target, status)  # a runner of another uid
        if target in runners:
            assert status in (401, "PermissionError"), (target, where, method, path, status)
        if path in CONTROL:
            assert not (isinstance(status, int) and 200 <= status < 300), (target, path, text)


def check_nothing_worked(
    server: JupyterServerProcess, model: ScriptedModelServer, attack: dict[str, Any]
) -> None:
    sid = attack["session_id"]
    attempts = attack["attempts"]
    assert_all_refused(attempts)
    # nothing it tried started a turn, answered a request or stopped the runner
    details = server.get(f"agents/sessions/{sid}").json()
    assert details["turns"] == 1 and details["state"] == "idle", details
    calls = model.message_requests  # (the attacker found the model server too: 404s)
    assert not [r for r in calls if "attacker-own-turn" in json.dumps(r.body)]
    log = _events(server, sid)
    assert [e["state"] for e in log if e["type"] == "status"].count("busy") == 1
    # the user hears that something tried the runner (when it could reach its socket)
    if any(a[4] == 401 and "bearer token" in a[5] for a in attempts):
        assert any(e["type"] == "error" and e.get("code") == "runner_refused" for e in log)
    # and the session goes on
    response = server.post(f"agents/{sid}/chat", {"message": "hello after the attack"})
    assert response.status_code == 200, response.text
    assert response.json()["events"][-1]["type"] == "done"


@pytest.fixture
def model() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer(api_key=TEST_KEY) as server:
        yield server


@pytest.mark.skipif(os.geteuid() != 0, reason="starts the server as another (normal) user")
def test_local_provider_as_a_normal_user(model: ScriptedModelServer) -> None:
    # the server, runner, CLI and tools all run as one normal uid: only the control
    # token (the runner holds its digest) and a non-dumpable runner stand in the way
    server = JupyterServerProcess(
        model.url, TEST_KEY, provider="local", user=NOBODY, python=python_for_others()
    )
    with serving(server) as started:
        attack = run_attack(started, model)
        check_nothing_worked(started, model, attack)
        # the token was nowhere the tools could read (and not on disk: same uid)
        records = list((started.folders["state_root"] / "sessions").glob("*/session.json"))
        assert records and all('"runner_token": ""' in r.read_text() for r in records)
