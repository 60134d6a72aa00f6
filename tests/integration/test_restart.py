"""A real server restart (a `jupyter server` process, stopped and started again) keeps
workspaces, session records and event logs, and the conversation resumes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agcluster_jupyter.testing.jupyter import JupyterServerProcess, runner_pids

from ..support import TEST_KEY, parse_sse

pytestmark = pytest.mark.cli


class Server(JupyterServerProcess):
    """The test's server, with SSE chat and event-log helpers."""

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
        server = Server(scripted_model.url, TEST_KEY, base=agent_dirs["base"], extra_args=extra)
        servers.append(server)
        try:
            server.start()
        except RuntimeError as exc:
            pytest.fail(str(exc))
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
