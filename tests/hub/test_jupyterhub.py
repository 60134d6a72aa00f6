"""A real JupyterHub: configurable-http-proxy, DummyAuthenticator, SimpleLocalProcessSpawner,
two users (alice, bob), each with a single-user server carrying the extension (local
provider, the scripted model upstream).  Through the proxy: each launches a session and
runs a turn; each sees only their own sessions and files; a token is refused on the
other user's server; the hub's ``last_activity`` for alice advances while her agent works
(a silent tool call, no request finishing); and no runner outlives the hub.

configurable-http-proxy comes from npm: the ``chp`` fixture installs it from
``tests/hub/proxy/package-lock.json`` into ``tests/hub/proxy/node_modules`` (gitignored)
when it is missing.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from agcluster_jupyter.testing.jupyter import runner_pids

from ..support import TEST_KEY, bash_scenario
from .hub_support import REPO, USERS, Hub, User

pytestmark = pytest.mark.cli

SPAWNER_CONFIG = """\
# SimpleLocalProcessSpawner, provider local: tests/hub/test_jupyterhub.py
c.JupyterHub.spawner_class = "simple"
c.Spawner.cmd = [sys.executable, "-m", "jupyterhub.singleuser"]
c.Spawner.environment = {{
    # the model's key lives in the single-user server's environment only
    "ANTHROPIC_API_KEY": {key!r},
    # the single-user server reports its last_activity to the hub this often (seconds)
    "JUPYTERHUB_ACTIVITY_INTERVAL": "1",
    "JUPYTER_PLATFORM_DIRS": "1",
    # this checkout's package, whichever the venv's install points at
    "PYTHONPATH": {repo!r},
}}


def per_user(spawner):
    # world-traversable folders per user: as root the agent CLI runs as nobody
    root = BASE / "users" / spawner.user.name
    folders = {{}}
    for trait, name in [
        ("workspace_root", "workspaces"),
        ("agent_state_root", "agent-state"),
        ("socket_root", "s"),
        ("state_root", "state"),
    ]:
        folders[trait] = root / name
    for path in [root, root / "home", *folders.values()]:
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o755)
    spawner.home_dir = str(root / "home")
    spawner.notebook_dir = str(root / "home")
    spawner.args = [
        "--ServerApp.allow_root=True",
        "--AgClusterApp.provider=local",
        "--AgClusterApp.anthropic_base_url={model_url}",
        "--AgClusterApp.activity_interval=0.5",
        *(f"--AgClusterApp.{{trait}}={{path}}" for trait, path in folders.items()),
    ]


c.Spawner.pre_spawn_hook = per_user
"""


@pytest.fixture
def hub(chp: Path, scripted_model: Any) -> Iterator[Hub]:
    base = Path(tempfile.mkdtemp(prefix="agc-hub-", dir="/tmp"))
    base.chmod(0o755)
    spawner = SPAWNER_CONFIG.format(key=TEST_KEY, model_url=scripted_model.url, repo=str(REPO))
    hub = Hub(base, chp, spawner)
    try:
        hub.wait_up()
        yield hub
    finally:
        hub.stop()
        deadline = time.monotonic() + 10
        while (leaked := runner_pids(str(base))) and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid in leaked:
            os.kill(pid, signal.SIGKILL)
        log = hub.tail()
        shutil.rmtree(base, ignore_errors=True)
        assert not leaked, f"runner processes outlived the hub: {sorted(leaked)}\n{log}"


def _when(stamp: str | None) -> datetime:
    assert stamp, "no last_activity"
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def test_two_users_on_a_real_hub(hub: Hub, scripted_model: Any) -> None:
    scripted_model.add_scenarios(
        [
            bash_scenario("alice's job", "sleep 4; echo alice > alice.txt"),
            bash_scenario("bob's job", "sleep 1; echo bob > bob.txt"),
        ]
    )
    users: dict[str, User] = {}
    for name in USERS:
        reply = hub.api("POST", f"users/{name}/tokens", json={"note": "agc test"})
        assert reply.status_code == 201, reply.text
        users[name] = User(hub, name, reply.json()["token"])
        started = hub.api("POST", f"users/{name}/server")
        assert started.status_code in (201, 202), started.text
    deadline = time.monotonic() + 60
    for name in USERS:
        while not hub.api("GET", f"users/{name}").json()["servers"].get("", {}).get("ready"):
            assert time.monotonic() < deadline, f"{name}'s server never got ready\n{hub.tail()}"
            time.sleep(0.2)
    alice, bob = users["alice"], users["bob"]

    sessions: dict[str, str] = {}
    for name, user in users.items():
        launched = user.call("POST", "agents/launch", json={"config_id": "code-assistant"})
        assert launched.status_code == 201, launched.text
        sessions[name] = launched.json()["session_id"]

    # bob's turn (JSON mode), while alice's waits
    reply = bob.call("POST", f"agents/{sessions['bob']}/chat", json={"message": "bob's job"})
    assert reply.status_code == 200, reply.text
    assert reply.json()["events"][-1]["type"] == "done"

    # alice's turn: a silent 4 s tool call; the hub hears of her activity meanwhile
    time.sleep(1.5)  # let the activity from her launch reach the hub
    before = _when(hub.api("GET", "users/alice").json()["last_activity"])
    result: dict[str, httpx.Response] = {}
    turn = threading.Thread(
        target=lambda: result.update(
            reply=alice.call(
                "POST", f"agents/{sessions['alice']}/chat", json={"message": "alice's job"}
            )
        )
    )
    turn_start = datetime.now().astimezone()
    turn.start()
    during = before
    deadline = time.monotonic() + 15
    while turn.is_alive() and time.monotonic() < deadline:
        during = max(during, _when(hub.api("GET", "users/alice").json()["last_activity"]))
        if (during - turn_start).total_seconds() >= 1.5:
            break
        time.sleep(0.25)
    still_running = turn.is_alive()
    turn.join(60)
    assert still_running, "the turn ended before the hub saw the agent's activity"
    assert (during - turn_start).total_seconds() >= 1.5, (before, turn_start, during)
    assert result["reply"].status_code == 200, result["reply"].text
    assert result["reply"].json()["events"][-1]["type"] == "done"
    time.sleep(1.5)
    after = _when(hub.api("GET", "users/alice").json()["last_activity"])
    assert after > during > before

    # each sees only their own sessions
    for name, user in users.items():
        listing = user.call("GET", "agents/sessions")
        assert listing.status_code == 200, listing.text
        assert [s["session_id"] for s in listing.json()["sessions"]] == [sessions[name]]

    # alice's token on bob's server: refused by the hub's auth
    foreign = alice.call("GET", "agents/sessions", user="bob")
    assert foreign.status_code == 403, (foreign.status_code, foreign.text[:300])
    # bob's session under alice's server: not there
    assert alice.call("GET", f"agents/sessions/{sessions['bob']}").status_code == 404
    assert alice.call("GET", f"files/{sessions['bob']}").status_code == 404

    # files: her workspace, her file only
    tree = alice.call("GET", f"files/{sessions['alice']}")
    assert tree.status_code == 200, tree.text
    names = {node["name"] for node in tree.json()["tree"]}
    assert "alice.txt" in names and "bob.txt" not in names
    bob_tree = bob.call("GET", f"files/{sessions['bob']}").json()
    assert "bob.txt" in {node["name"] for node in bob_tree["tree"]}
    assert runner_pids(str(hub.base)), "expected the users' runners while their servers run"

    # stop both servers through the hub
    for name in USERS:
        stopped = hub.api("DELETE", f"users/{name}/server")
        assert stopped.status_code in (202, 204), stopped.text
    deadline = time.monotonic() + 60
    for name in USERS:
        while hub.api("GET", f"users/{name}").json()["servers"]:
            assert time.monotonic() < deadline, f"{name}'s server did not stop\n{hub.tail()}"
            time.sleep(0.2)
    deadline = time.monotonic() + 10
    while runner_pids(str(hub.base)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not runner_pids(str(hub.base)), "runners outlived their users' servers"
