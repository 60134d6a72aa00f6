"""The docker provider against the real engine: a real Jupyter server (auth on), real
runner containers from the agent image, the real claude CLI in them, the scripted model
behind the gateway."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from .docker_support import (
    chat_sse,
    containers_of,
    inspect,
)

pytestmark = [pytest.mark.docker, pytest.mark.cli]


@pytest.fixture
def agcluster_config(docker_config: dict[str, Any]) -> dict[str, Any]:
    return docker_config


async def test_core_flow_in_a_container(
    api: Any, launched: Any, require_docker: Any, agent_dirs: dict[str, Path]
) -> None:
    health = await api("health")
    assert health["provider"] == "docker" and health["provider_ok"] is True, health
    assert health["isolated"] is True and "warning" not in health

    session = await launched("code-assistant")
    sid = session["session_id"]
    assert session["status"] == "ready" and session["isolated"] is True
    (container,) = containers_of(require_docker, sid)
    assert container.status == "running"
    assert container.id == session["agent_id"]

    events = await chat_sse(api, sid, "Please analyse some data")
    assert events[-1]["type"] == "done"
    tools = [e["name"] for e in events if e["type"] == "tool_use"]
    assert {"Write", "Bash", "Edit"} <= set(tools), tools
    results = {e["tool_use_id"]: e for e in events if e["type"] == "tool_result"}
    bash = [e["tool_use_id"] for e in events if e["type"] == "tool_use" and e["name"] == "Bash"]
    assert "mean: 21.5 C" in results[bash[0]]["output"]
    assert "median" in results[bash[-1]]["output"]
    writes = [e for e in events if e["type"] == "tool_use" and e["name"] == "Write"]
    # the agent sees its workspace at /workspace
    assert writes[0]["input"]["file_path"] == "/workspace/analysis.py"

    # the files are on the host, in the session's workspace, owned by the container's uid
    workspace = Path(session["workspace"])
    script = workspace / "analysis.py"
    assert "statistics.median" in script.read_text()
    uid, gid = (int(x) for x in inspect(require_docker, container.id)["Config"]["User"].split(":"))
    expected = (os.geteuid(), os.getegid()) if os.geteuid() else (65534, 65534)
    assert (uid, gid) == expected
    assert (script.stat().st_uid, script.stat().st_gid) == (uid, gid)
    tree = await api(f"files/{sid}")
    assert tree["root"] == "/workspace"
    assert "analysis.py" in [n["name"] for n in tree["tree"]]

    details = await api(f"agents/sessions/{sid}")
    assert details["state"] == "idle" and details["provider"] == "docker"
    resources = details["resources"]
    assert resources["memory_bytes"] > 10 * 1024**2, resources
    assert resources["memory_limit_bytes"] == 4 * 1024**3  # code-assistant: 4g
    assert resources["pids"] >= 2 and "cpu_percent" in resources

    await api(f"agents/sessions/{sid}", method="DELETE")
    assert containers_of(require_docker, sid) == []
    assert script.is_file(), "the workspace outlives its container"
