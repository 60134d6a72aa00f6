"""A Jupyter server (a real ``jupyter server`` process) restarted while its Kubernetes
session runs: the new server re-adopts the pod by its record and token, the turn after
the restart runs on the same pod, and the workspace on the PVC is still there."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agcluster_jupyter.testing.jupyter import free_port

from ..integration.test_restart import Server
from ..support import TEST_KEY, bash_scenario
from ..support.fake_kubernetes import FakeKubernetes
from ..support.fake_node import LocalNode
from .conftest import write_kubeconfig

pytestmark = pytest.mark.cli

NAMESPACE = "agents"


class ThreadedCluster:
    """The fake cluster on a loop of its own thread: the servers under test are other
    processes, and the test itself is synchronous."""

    def __init__(self, root: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.fake = FakeKubernetes(node=LocalNode(root))
        self.call(self.fake.start())

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(60)

    def pods(self) -> list[str]:
        return self.call(_names(self.fake, "pods"))

    def pids(self) -> dict[str, int]:
        return {name: w.process.pid for name, w in self.fake.node.workloads.items()}  # type: ignore[union-attr]

    def close(self) -> None:
        self.call(self.fake.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


async def _names(fake: FakeKubernetes, plural: str) -> list[str]:
    return fake.names(plural)


@pytest.fixture
def cluster(agent_dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    cluster = ThreadedCluster(agent_dirs["base"] / "node")
    kubeconfig = write_kubeconfig(agent_dirs["base"] / "kubeconfig", cluster.fake.url)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.delenv("POD_IP", raising=False)
    yield cluster
    cluster.close()


@pytest.fixture
def kubernetes_server(scripted_model: Any, agent_dirs: dict[str, Path]) -> Iterator[Any]:
    """Start ``jupyter server`` processes with provider=kubernetes (stopped at the end)."""
    servers: list[Server] = []

    def make(*extra: str) -> Server:
        server = Server(
            scripted_model.url,
            TEST_KEY,
            base=agent_dirs["base"],
            provider="kubernetes",
            extra_args=extra,
        )
        servers.append(server)
        server.start()
        return server

    yield make
    for server in servers:
        if server.proc is not None and server.proc.poll() is None:
            server.stop()


def test_a_restarted_server_readopts_its_pods(
    kubernetes_server: Any, cluster: ThreadedCluster, scripted_model: Any
) -> None:
    scripted_model.add_scenarios([bash_scenario("leave a mark", "echo mark > mark.txt")])
    # a fixed gateway port stands in for the Service URL the pods keep calling
    args = (
        f"--AgClusterApp.kubernetes_namespace={NAMESPACE}",
        "--AgClusterApp.gateway_host=127.0.0.1",
        f"--AgClusterApp.gateway_port={free_port()}",
    )
    keep = "--AgClusterApp.stop_sessions_on_shutdown=False"
    first = kubernetes_server(*args, keep)
    sid = first.post("agents/launch", {"config_id": "code-assistant"}).json()["session_id"]
    assert first.chat(sid, "please leave a mark")[-1]["type"] == "done"
    (pod,) = cluster.pods()
    pids = cluster.pids()
    first.stop()
    assert cluster.pods() == [pod] and cluster.pids() == pids, "the pod outlives the server"

    second = kubernetes_server(*args)  # (stops its sessions on shutdown)
    details = second.get(f"agents/sessions/{sid}").json()
    assert details["state"] in {"ready", "idle"}, details
    assert details["agent_id"] == pod
    # the same pod answers: through the new server's gateway, with the saved token
    scripted_model.reset()
    events = second.chat(sid, "hello after the restart")
    assert events[-1]["type"] == "done"
    assert not [e for e in events if e["type"] == "error"], events
    assert "leave a mark" in json.dumps(scripted_model.message_requests[-1].body)
    assert cluster.pids() == pids
    assert second.get(f"files/{sid}/mark.txt").json()["content"] == "mark\n"
    second.stop()  # stops its sessions: the pod goes, the PVC stays
    assert cluster.pods() == []
    assert cluster.fake.names("persistentvolumeclaims") != []
