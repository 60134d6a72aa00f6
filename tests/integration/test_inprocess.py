"""The in-process fallback: a real ServerApp with agcluster on a thread of the test process.

The server has its own loop in its own thread, so these are plain sync tests.  The
scripted model plays Claude; the real claude CLI runs real tools (local provider).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from agcluster_jupyter.kernel import inprocess
from agcluster_jupyter.kernel.client import AgClusterClient, ServerNotFound, find_server
from agcluster_jupyter.kernel.inprocess import InProcessServer, default_client, default_server

from ..support import TEST_KEY, bash_scenario, in_process_settings, runner_pids


@pytest.mark.cli
def test_in_process_server_runs_a_turn(
    scripted_model: Any, agent_dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", TEST_KEY)  # read from the environment, as always
    scripted_model.add_scenarios([bash_scenario("make notes", "echo in-process > notes.txt")])
    argv = [
        f"--AgClusterApp.{k}={v}"
        for k, v in in_process_settings(scripted_model.url, agent_dirs).items()
    ]
    server = InProcessServer(argv)
    under = str(agent_dirs["base"])
    started = time.monotonic()
    server.start(timeout=60)
    try:
        assert time.monotonic() - started < 60
        assert server.url.startswith("http://127.0.0.1:") and server.running
        with server.client() as client:
            health = client.health()
            assert health["provider"] == "local" and health["server_key"] is True
            sid = client.launch("code-assistant")["session_id"]
            assert runner_pids(under), "no runner after launch"
            events = list(client.chat(sid, "make notes please"))
            assert events[-1].type == "done"
            tool = next(e for e in events if e.type == "tool_use")
            assert (tool.name, tool.input["command"]) == ("Bash", "echo in-process > notes.txt")
            result = next(e for e in events if e.type == "tool_result")
            assert not result.is_error
            tree = client.files(sid)
            assert "notes.txt" in {node["name"] for node in tree["tree"]}
            assert client.preview(sid, "notes.txt")["content"] == "in-process\n"
        # its runtime file is private: discovery (from a kernel's default dirs) ignores it
        assert os.getpid() not in {info.get("pid") for info in _servers()}
    finally:
        server.stop()
    assert not server.running
    assert not runner_pids(under), "a runner outlived stop()"
    assert server.base is not None and not server.base.exists()
    server.stop()  # idempotent
    with pytest.raises(ServerNotFound):
        AgClusterClient(server.url, server.token, timeout=2).health()


def _servers() -> list[dict[str, Any]]:
    from jupyter_server.serverapp import list_running_servers

    return list(list_running_servers())


def test_default_client_falls_back_once(
    no_server_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ServerNotFound):
        find_server()
    assert default_server() is None
    first = default_client()
    line = capsys.readouterr().err
    assert line.count("\n") == 1 and "agents run inside this Python process" in line
    assert "no Jupyter server found" in line and "local provider" in line
    server = default_server()
    assert server is not None and first.url == server.url
    # the settings came from the Jupyter config file
    assert first.health()["provider"] == "local"
    # the second call reuses the server (and says nothing); discovery still finds nothing
    second = default_client(timeout=10)
    assert second.url == first.url and default_server() is server
    assert capsys.readouterr().err == ""
    with pytest.raises(ServerNotFound):
        find_server()
    first.close()
    second.close()
    server.stop()
    assert default_server() is None


def test_default_client_falls_back_from_an_unreachable_server(
    no_server_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("JUPYTER_SERVER_URL", "http://127.0.0.1:9/")
    client = default_client()
    assert "the Jupyter server at http://127.0.0.1:9/ cannot be reached" in capsys.readouterr().err
    assert client.health()["status"] == "ok"
    client.close()


@pytest.mark.cli
def test_sessions_end_with_the_process(no_server_env: Path, agent_dirs: dict[str, Path]) -> None:
    """A process that exits without stop(): the exit hook stops its sessions."""
    under = str(agent_dirs["base"])
    script = textwrap.dedent(
        f"""
        import json
        from agcluster_jupyter.kernel.inprocess import default_client, default_server
        from agcluster_jupyter.testing.jupyter import runner_pids

        client = default_client()
        client.launch("code-assistant")
        base = default_server().base
        print(json.dumps({{"runners": len(runner_pids({under!r})), "base": str(base)}}))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["runners"] >= 1
    assert not runner_pids(under), "a runner outlived its process"
    assert not Path(report["base"]).exists()


def test_start_failure_is_one_clear_error(tmp_path: Path) -> None:
    # the caller's settings replace the forced ones (a repeated one would be refused)
    server = InProcessServer(["--ServerApp.port=not-a-port"], root_dir=tmp_path)
    with pytest.raises(inprocess.InProcessServerError, match="did not start") as info:
        server.start(timeout=30)
    assert "\n" not in str(info.value) and "exited; see its log" in str(info.value)
    assert not server.running and server.base is not None and not server.base.exists()


@pytest.mark.cli
def test_defaults_fit_the_agent_user(
    scripted_model: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unconfigured: agent state in the private folder; as root, workspaces where the agent
    user (nobody) can reach them even though the working directory (0700) is closed."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", TEST_KEY)
    root_dir = tmp_path / "closed"
    root_dir.mkdir(mode=0o700)
    argv = [
        "--AgClusterApp.provider=local",
        f"--AgClusterApp.anthropic_base_url={scripted_model.url}",
    ]
    with InProcessServer(argv, root_dir=root_dir).start() as server, server.client() as client:
        assert server.base is not None
        sid = client.launch("code-assistant")["session_id"]
        try:
            workspace = Path(client.session(sid)["workspace"])
            if os.geteuid() == 0:
                assert workspace.parent == Path(inprocess.ROOT_WORKSPACE_ROOT)
            else:
                assert workspace.parent == root_dir / "agent-workspaces"
            # the runner's --state-dir is in the private folder
            assert runner_pids(str(server.base / "agent-state"))
        finally:
            client.stop(sid, purge=True)
    assert not runner_pids(str(server.base))
