"""dockerd restarted in the middle of a turn.

The engine restarted is a private ``dockerd`` this test starts (its own data root,
exec root, socket, containerd and cgroup parent, no bridge and no iptables rules), used
by this test's Jupyter server through ``DOCKER_HOST``: restarting the machine's shared
engine would break every other docker test and user on it.  Its data root is kept in
``/var/tmp`` between runs, so the agent image is copied into it once (about a minute).

Docker's ``live-restore`` decides what happens to running containers: off (the default,
as on this machine), the daemon stops them when it stops; on, they keep running.  Both
are tested.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..e2e.docker_support import IMAGE, docker_unusable
from ..integration.test_restart import Server
from ..support import TEST_KEY, serving
from .helpers import LEAN_SERVER, assert_gapless, conversation
from .test_runner_and_server import GATED_TOOL, BackgroundChat

pytestmark = [pytest.mark.docker, pytest.mark.cli]

DATA_ROOT = Path("/var/tmp/agc-faults-dockerd")
EXEC_ROOT = Path("/run/agc-faults-dockerd")
SOCKET = Path("/run/agc-faults-dockerd.sock")
HOST = f"unix://{SOCKET}"
#: the private engine's own bridge.  Not --bridge=none: a dockerd started so deletes
#: the host's default bridge (docker0), breaking the shared engine's networking.
BRIDGE = "agc-faults0"
BRIDGE_CIDR = "10.213.0.1/24"


def _interface_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def _ensure_bridge() -> None:
    if _interface_exists(BRIDGE):
        return
    for command in (
        ["ip", "link", "add", BRIDGE, "type", "bridge"],
        ["ip", "addr", "add", BRIDGE_CIDR, "dev", BRIDGE],
        ["ip", "link", "set", BRIDGE, "up"],
    ):
        subprocess.run(command, check=True, capture_output=True)


class PrivateEngine:
    """A ``dockerd`` of our own, which the test may stop and start at will."""

    def __init__(self, live_restore: bool) -> None:
        self.live_restore = live_restore
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = DATA_ROOT.parent / "agc-faults-dockerd.log"

    def docker(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(["docker", "-H", HOST, *args], capture_output=True, **kwargs)

    def start(self, timeout: float = 60) -> None:
        EXEC_ROOT.mkdir(parents=True, exist_ok=True)
        command = [
            "dockerd",
            f"--data-root={DATA_ROOT}",
            f"--exec-root={EXEC_ROOT}",
            f"--pidfile={EXEC_ROOT}.pid",
            f"--host={HOST}",
            f"--bridge={BRIDGE}",
            "--iptables=false",
            "--ip-masq=false",
            "--cgroup-parent=agc-faults",
            "--containerd-namespace=agc-faults",
            "--containerd-plugins-namespace=agc-faults-plugins",
            "--shutdown-timeout=2",
            f"--live-restore={'true' if self.live_restore else 'false'}",
        ]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(command, stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.docker("version").returncode == 0:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"the private dockerd did not start: {self.log.read_text()[-2000:]}")

    def stop(self, timeout: float = 60) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def ensure_image(self) -> None:
        """The agent image, the same as the shared engine's (copied in if not)."""
        ours = self.docker("image", "inspect", "-f", "{{.Id}}", IMAGE).stdout.strip()
        theirs = subprocess.run(
            ["docker", "image", "inspect", "-f", "{{.Id}}", IMAGE], capture_output=True
        ).stdout.strip()
        if not theirs:
            docker_unusable(f"the agent image {IMAGE} is missing")
        if ours == theirs:
            return
        with subprocess.Popen(["docker", "save", IMAGE], stdout=subprocess.PIPE) as save:
            loaded = self.docker("load", stdin=save.stdout)
        assert save.returncode == 0 and loaded.returncode == 0, loaded.stderr

    def remove_containers(self) -> None:
        ids = self.docker("ps", "-aq").stdout.split()
        if ids:
            self.docker("rm", "-f", *(i.decode() for i in ids))


@pytest.fixture(params=[False, True], ids=["live-restore-off", "live-restore-on"])
def engine(request: pytest.FixtureRequest) -> Iterator[PrivateEngine]:
    if os.geteuid() != 0 or shutil.which("dockerd") is None:
        docker_unusable("a private dockerd needs root and the dockerd binary")
    DATA_ROOT.mkdir(parents=True, exist_ok=True)
    had_docker0 = _interface_exists("docker0")
    _ensure_bridge()
    engine = PrivateEngine(live_restore=request.param)
    engine.start()
    try:
        engine.ensure_image()
        engine.remove_containers()  # a previous run's, had it died half-way
        yield engine
    finally:
        if engine.proc is not None and engine.proc.poll() is None:
            engine.remove_containers()
        engine.stop()
        subprocess.run(["ip", "link", "delete", BRIDGE], capture_output=True)
    # the shared engine's bridge is untouched
    assert _interface_exists("docker0") == had_docker0


def test_dockerd_restarted_mid_turn(
    engine: PrivateEngine, scripted_model: Any, agent_dirs: dict[str, Path]
) -> None:
    """live-restore off: stopping, the daemon sends the container SIGTERM and the runner
    ends the turn itself: the user sees an ``error`` (``interrupted``) and ``done``, then
    the session ``failed`` (its detail: the container exited); the next chat starts a
    new container on the restarted engine, and it remembers the conversation.

    live-restore on: the container, the runner and the turn go on through the restart
    (the runner's socket is a host file, not the engine's); the turn ends normally, and
    the session's container is still the same.

    Either way the workspace, the gapless log and the conversation survive."""
    scripted_model.add_scenarios([GATED_TOOL])
    server = Server(
        scripted_model.url,
        TEST_KEY,
        base=agent_dirs["base"],
        provider="docker",
        extra_args=[*LEAN_SERVER, "--AgClusterApp.runner_start_timeout=90"],
    )
    server.env["DOCKER_HOST"] = HOST
    with serving(server):
        launch = server.post("agents/launch", {"config_id": "code-assistant"})
        assert launch.status_code == 201, launch.text
        session = launch.json()
        sid, container = session["session_id"], session["agent_id"]
        workspace = Path(session["workspace"])
        assert server.chat(sid, "hello, remember the word PELICAN")[-1]["type"] == "done"
        chat = BackgroundChat(server, sid, "gated work please")
        deadline = time.monotonic() + 60
        while not (workspace / "kept.txt").exists():
            assert time.monotonic() < deadline, "the tool did not start"
            time.sleep(0.05)

        engine.restart()
        (workspace / "go").touch()  # the tool may finish now, wherever it still runs
        chat.join(60)
        assert chat.error is None and chat.events[-1]["type"] == "done"
        errors = [e for e in chat.events if e["type"] == "error"]
        details = server.get(f"agents/sessions/{sid}").json()
        deadline = time.monotonic() + 30
        while not engine.live_restore and details["state"] != "failed":
            # the runner ended the turn before it exited: its exit is seen a moment later
            assert time.monotonic() < deadline, details
            time.sleep(0.1)
            details = server.get(f"agents/sessions/{sid}").json()
        if engine.live_restore:
            assert errors == []
            said = [e["text"] for e in chat.events if e["type"] == "message"]
            assert "Finished the gated work." in said
            assert details["state"] == "idle" and details["agent_id"] == container
        else:
            assert [e["code"] for e in errors] == ["interrupted"]
            assert details["state"] == "failed", details
            assert "the agent container exited" in details["state_detail"]
            # the dead container is removed once the engine answers again
            deadline = time.monotonic() + 30
            while engine.docker("ps", "-aq").stdout.strip():
                assert time.monotonic() < deadline, "the dead container was not removed"
                time.sleep(0.2)
        assert (workspace / "kept.txt").read_text() == "kept\n"

        scripted_model.reset()
        events = server.chat(sid, "what do you remember?")
        assert events[-1]["type"] == "done" and not [e for e in events if e["type"] == "error"]
        request = next(r for r in scripted_model.message_requests if "remember?" in r.prompt)
        assert "PELICAN" in conversation(request), "the conversation was lost"
        running = engine.docker("ps", "-q", "--no-trunc").stdout.decode().split()
        fresh = server.get(f"agents/sessions/{sid}").json()["agent_id"]
        assert running == [fresh]
        assert (fresh == container) is engine.live_restore
        assert_gapless(server.events(sid))
