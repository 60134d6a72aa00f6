"""Jupyter run as root from a folder of mode 0700 (a home such as /root): the local
provider's agents run as ``nobody``, who cannot enter it.  Out of the box the workspaces
move to a folder it can reach, said once in the log; a configured workspace root it cannot
reach makes the provider refuse with the one line that fixes it (health and launch)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agcluster_jupyter.testing.jupyter import JupyterServerProcess
from agcluster_jupyter.testing.server import ScriptedModelServer

from ..support import TEST_KEY, bash_scenario, serving

pytestmark = [
    pytest.mark.cli,
    pytest.mark.skipif(os.geteuid() != 0, reason="the case of a server run as root"),
]


def _server(model: ScriptedModelServer, *, workspace_root: str | None) -> JupyterServerProcess:
    server = JupyterServerProcess(model.url, TEST_KEY, provider="local")
    private = server.base / "home"
    private.mkdir(mode=0o700)
    (private / "project").mkdir()
    server.set_option("ServerApp.root_dir", private / "project")
    server.set_option("AgClusterApp.workspace_root", workspace_root)
    return server


def test_a_closed_home_folder_works_out_of_the_box() -> None:
    with ScriptedModelServer(api_key=TEST_KEY) as model:
        model.add_scenarios([bash_scenario("make marker", "echo made > marker.txt")])
        with serving(_server(model, workspace_root=None)) as server:
            health = server.get("health").json()
            assert health["provider_ok"] is True and health["isolated"] is False
            launched = server.post("agents/launch", {"config_id": "code-assistant"})
            assert launched.status_code == 201, launched.text
            sid = launched.json()["session_id"]
            details = server.get(f"agents/sessions/{sid}").json()
            workspace = Path(details["workspace"])
            assert workspace.is_relative_to("/var/tmp/agcluster-workspaces")
            assert details["contents_path"] is None  # not in the Jupyter tree: said so
            reply = server.post(f"agents/{sid}/chat", {"message": "make marker please"})
            assert reply.status_code == 200, reply.text
            assert (workspace / "marker.txt").read_text().strip() == "made"
            assert "session workspaces are in /var/tmp/agcluster-workspaces/" in server.tail(20000)


def test_a_configured_unreachable_workspace_root_is_refused_with_the_fix(tmp_path: Path) -> None:
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    with ScriptedModelServer(api_key=TEST_KEY) as model:
        server = _server(model, workspace_root=str(closed / "workspaces"))
        with serving(server) as started:
            health = started.get("health").json()
            assert health["provider_ok"] is False
            line = "set AgClusterApp.workspace_root to a folder it can reach"
            assert "cannot enter" in health["provider_detail"] and line in health["provider_detail"]
            launched = started.post("agents/launch", {"config_id": "code-assistant"})
            assert launched.status_code == 503 and line in launched.json()["message"]
            assert line in started.tail(20000)  # said once, at startup
