"""Recovery with the docker provider: a real `jupyter server` process is stopped and
started again on the same folders; containers are re-adopted by their records and
labels, orphans are removed, and nothing is left behind."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agcluster_jupyter._version import __version__
from agcluster_jupyter.providers.base import (
    LABEL_CONFIG,
    LABEL_OWNER,
    LABEL_SESSION,
    LABEL_STATE_ROOT,
    LABEL_VERSION,
)
from agcluster_jupyter.testing.jupyter import JupyterServerProcess

from ..support import TEST_KEY, parse_sse
from .docker_support import IMAGE, STATE_ROOTS, containers_of, session_containers

pytestmark = [pytest.mark.docker, pytest.mark.cli]

KEEP = "--AgClusterApp.stop_sessions_on_shutdown=False"


@pytest.fixture
def servers(require_docker: Any, scripted_model: Any) -> Iterator[Any]:
    made: list[JupyterServerProcess] = []

    def make(*extra: str, base: Path | None = None) -> JupyterServerProcess:
        server = JupyterServerProcess(
            scripted_model.url, TEST_KEY, base=base, provider="docker", extra_args=extra
        )
        STATE_ROOTS.add(str(server.base))
        made.append(server)
        server.start()
        return server

    yield make
    for server in made:
        server.stop()
    for base in {s.base for s in made}:
        for container in session_containers(require_docker, base):
            container.remove(force=True)
        shutil.rmtree(base, ignore_errors=True)


def chat(server: JupyterServerProcess, sid: str, message: str) -> list[dict[str, Any]]:
    response = server.post(
        f"agents/{sid}/chat", {"message": message}, headers={"Accept": "text/event-stream"}
    )
    assert response.status_code == 200, response.text
    return parse_sse(response.text)


def stray(client: Any, labels: dict[str, str], name: str) -> Any:
    """A container that looks like a session's runner (it only sleeps)."""
    return client.containers.run(
        IMAGE,
        ["sleep", "300"],
        name=name,
        labels=labels,
        detach=True,
        network_mode="none",
        user="65534:65534",
    )


async def test_a_restarted_server_readopts_containers_and_removes_orphans(
    servers: Any, require_docker: Any, scripted_model: Any
) -> None:
    first = servers(KEEP)
    launch = first.post("agents/launch", {"config_id": "code-assistant"})
    assert launch.status_code == 201, launch.text
    sid = launch.json()["session_id"]
    agent_id = launch.json()["agent_id"]
    assert chat(first, sid, "hello, remember the word PELICAN")[-1]["type"] == "done"
    before = parse_sse(first.get(f"agents/{sid}/events", params={"follow": "false"}).text)
    first.stop()

    # kept for re-adoption: still running without its server
    (container,) = containers_of(require_docker, sid)
    container.reload()
    assert container.status == "running" and container.id == agent_id
    # an orphan of this installation (no record) and a runner of another server
    ours = {
        LABEL_SESSION: "0rphan00-0000-0000-0000-000000000000",
        LABEL_OWNER: container.labels[LABEL_OWNER],
        LABEL_STATE_ROOT: container.labels[LABEL_STATE_ROOT],
        LABEL_CONFIG: "code-assistant",
        LABEL_VERSION: __version__,
    }
    orphan = stray(require_docker, ours, f"agc-test-orphan-{sid[:8]}")
    theirs = {**ours, LABEL_SESSION: "elsewhere", LABEL_STATE_ROOT: "/somewhere/else/state"}
    other = stray(require_docker, theirs, f"agc-test-other-{sid[:8]}")
    try:
        second = servers(base=first.base)
        details = second.get(f"agents/sessions/{sid}").json()
        assert details["state"] == "idle" and details["agent_id"] == agent_id, details
        assert containers_of(require_docker, "0rphan00-0000-0000-0000-000000000000") == []
        other.reload()
        assert other.status == "running", "another server's runner was touched"

        # the same container takes the next turn; the conversation goes on; the log too
        scripted_model.reset()
        events = chat(second, sid, "what do you remember?")
        assert events[-1]["type"] == "done"
        assert events[0]["seq"] == before[-1]["seq"] + 1
        (same,) = containers_of(require_docker, sid)
        assert same.id == agent_id
        request = next(r for r in scripted_model.message_requests if "remember?" in r.prompt)
        assert "PELICAN" in json.dumps(request.body["messages"])
    finally:
        for container in (other, orphan):
            with contextlib.suppress(Exception):  # the orphan should be gone already
                container.remove(force=True)

    # a server that stops its sessions on shutdown leaves no container behind
    second.stop()
    assert session_containers(require_docker, first.base) == []


async def test_the_conversation_survives_its_container(
    servers: Any, require_docker: Any, scripted_model: Any
) -> None:
    server = servers()
    sid = server.post("agents/launch", {"config_id": "code-assistant"}).json()["session_id"]
    assert chat(server, sid, "hello, remember the word HERON")[-1]["type"] == "done"
    (first,) = containers_of(require_docker, sid)
    stopped = httpx.delete(server.url + f"agents/sessions/{sid}", headers=server.headers)
    assert stopped.status_code == 200
    assert containers_of(require_docker, sid) == []
    scripted_model.reset()
    events = chat(server, sid, "what do you remember?")
    assert events[-1]["type"] == "done"
    (second,) = containers_of(require_docker, sid)
    assert second.id != first.id
    assert "--resume" in second.attrs["Config"]["Cmd"]
    request = next(r for r in scripted_model.message_requests if "remember?" in r.prompt)
    assert "HERON" in json.dumps(request.body["messages"])


@pytest.fixture
def agcluster_config(docker_config: dict[str, Any]) -> dict[str, Any]:
    return {**docker_config, "idle_timeout": 1.0, "cleanup_interval": 0.5}


async def test_the_idle_reaper_removes_the_container(api: Any, require_docker: Any) -> None:
    session = await api("agents/launch", method="POST", body={"config_id": "code-assistant"})
    sid = session["session_id"]
    assert containers_of(require_docker, sid)
    for _ in range(100):
        details = await api(f"agents/sessions/{sid}")
        if details["state"] == "stopped" and not containers_of(require_docker, sid):
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail(f"not reaped: {details['state']}, {containers_of(require_docker, sid)}")
    await api(f"agents/sessions/{sid}", method="DELETE", params={"purge": "true"})


async def test_shutdown_while_the_warm_pool_fills_leaves_no_container(
    servers: Any, require_docker: Any
) -> None:
    server = servers("--AgClusterApp.warm_pool_size=2")
    for _ in range(300):  # stop while the first pooled runner is up and its CLI connecting
        if any(c.status == "running" for c in session_containers(require_docker, server.base)):
            break
        await asyncio.sleep(0.02)
    else:
        pytest.fail("the warm pool started no container")
    await asyncio.sleep(0.3)
    assert server.get("health").json()["warm_pool"]["available"] == 0
    server.stop()
    assert session_containers(require_docker, server.base) == []
