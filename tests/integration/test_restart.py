"""A real server restart (a `jupyter server` process, stopped and started again) keeps
workspaces, session records and event logs, and the conversation resumes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..support import TEST_KEY, parse_sse, runner_pids

pytestmark = pytest.mark.cli

TOKEN = "restart-test-token"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A `jupyter server` subprocess with the extension, on fixed state folders."""

    def __init__(self, model_url: str, dirs: dict[str, Path], *extra: str) -> None:
        self.port = _free_port()
        self.model_url = model_url
        self.dirs = dirs
        self.extra = list(extra)
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{self.port}/api/agcluster/"
        self.log = dirs["base"] / f"server-{self.port}.log"

    def start(self) -> None:
        env = {**os.environ, "ANTHROPIC_API_KEY": TEST_KEY, "JUPYTER_PLATFORM_DIRS": "1"}
        root = self.dirs["base"] / "root"
        root.mkdir(exist_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "jupyter_server",
            f"--ServerApp.port={self.port}",
            "--ServerApp.ip=127.0.0.1",
            "--ServerApp.open_browser=False",
            "--ServerApp.allow_root=True",
            f"--ServerApp.root_dir={root}",
            f"--IdentityProvider.token={TOKEN}",
            "--AgClusterApp.provider=local",
            f"--AgClusterApp.anthropic_base_url={self.model_url}",
            f"--AgClusterApp.workspace_root={self.dirs['workspaces']}",
            f"--AgClusterApp.agent_state_root={self.dirs['agent_state']}",
            f"--AgClusterApp.socket_root={self.dirs['sockets']}",
            f"--AgClusterApp.state_root={self.dirs['state']}",
            *self.extra,
        ]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if self.get("health").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            time.sleep(0.2)
        pytest.fail("jupyter server did not start:\n" + self.log.read_text()[-3000:])

    def stop(self, sig: int = signal.SIGTERM) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)
        # jupyter server asks for confirmation on the first SIGINT; SIGTERM stops it
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"token {TOKEN}"}

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(self.url + path, headers=self._headers(), timeout=60, **kwargs)

    def post(self, path: str, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
        return httpx.post(
            self.url + path, json=body, headers={**self._headers(), **(headers or {})}, timeout=120
        )

    def chat(self, session_id: str, message: str) -> list[dict[str, Any]]:
        response = self.post(
            f"agents/{session_id}/chat",
            {"message": message},
            headers={"Accept": "text/event-stream"},
        )
        assert response.status_code == 200, response.text
        return parse_sse(response.text)

    def events(self, session_id: str) -> list[dict[str, Any]]:
        return parse_sse(self.get(f"agents/{session_id}/events", params={"follow": "false"}).text)


@pytest.fixture
def server_factory(scripted_model: Any, agent_dirs: dict[str, Path]) -> Iterator[Any]:
    servers: list[Server] = []

    def make(*extra: str) -> Server:
        server = Server(scripted_model.url, agent_dirs, *extra)
        servers.append(server)
        server.start()
        return server

    yield make
    for server in servers:
        if server.proc is not None and server.proc.poll() is None:
            server.stop()


def test_restart_keeps_workspace_record_and_log_and_resumes(
    server_factory: Any, scripted_model: Any, agent_dirs: dict[str, Path]
) -> None:
    first = server_factory()
    launch = first.post("agents/launch", {"config_id": "code-assistant"})
    assert launch.status_code == 201, launch.text
    sid = launch.json()["session_id"]
    events = first.chat(sid, "Please analyse some data")
    assert events[-1]["type"] == "done"
    log_before = first.events(sid)
    workspace = Path(launch.json()["workspace"])
    first.stop()
    assert not runner_pids(str(agent_dirs["base"])), "a runner outlived its server"

    second = server_factory()
    details = second.get(f"agents/sessions/{sid}").json()
    assert details["state"] == "stopped"
    assert details["turns"] == 1 and details["usage"]["input_tokens"] > 0
    log_after = second.events(sid)
    assert log_after[: len(log_before)] == log_before
    assert (workspace / "analysis.py").is_file()
    files = second.get(f"files/{sid}").json()
    assert "analysis.py" in [n["name"] for n in files["tree"]]

    scripted_model.reset()
    events = second.chat(sid, "hello again")
    assert events[-1]["type"] == "done"
    # the runner resumed the conversation: the model saw the first turn again
    request = scripted_model.message_requests[-1]
    assert "analyse some data" in str(request.body["messages"])
    seqs = [e["seq"] for e in second.events(sid)]
    assert seqs == list(range(1, len(seqs) + 1))
    second.stop()


def test_runners_kept_on_shutdown_are_readopted(
    server_factory: Any, agent_dirs: dict[str, Path]
) -> None:
    mine = str(agent_dirs["base"])
    keep = "--AgClusterApp.stop_sessions_on_shutdown=False"
    first = server_factory(keep)
    sid = first.post("agents/launch", {"config_id": "code-assistant"}).json()["session_id"]
    first.chat(sid, "hello")
    pids = runner_pids(mine)
    assert pids
    first.stop()
    assert runner_pids(mine) == pids, "the runner should outlive the server in keep mode"

    second = server_factory(keep, "--AgClusterApp.stop_sessions_on_shutdown=True")
    details = second.get(f"agents/sessions/{sid}").json()
    assert details["state"] in {"ready", "idle"}
    events = second.chat(sid, "hello once more")
    assert events[-1]["type"] == "done"
    assert runner_pids(mine) == pids, "the same runner served the turn"
    second.stop()
    assert not runner_pids(mine)
