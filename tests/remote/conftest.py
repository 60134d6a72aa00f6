"""A Jupyter server whose provider is ``kubernetes`` or ``fly``, against local fakes of
their APIs that run each pod or machine's real runner on a :class:`LocalNode`.

Only the cluster and Fly's control plane are fakes (nobody here can reach them); the
server, the provider, the runner, the claude CLI, the gateway's TCP listener and the
runner's file API are the real ones, spoken over real TCP.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ..support import wait_until
from ..support.fake_fly import FakeFly
from ..support.fake_kubernetes import FakeKubernetes
from ..support.fake_node import LocalNode

NAMESPACE = "agents"
FLY_APP = "agents"
FLY_TOKEN = "fly-test-token"


@dataclass
class Remote:
    """The fake control plane a test talks to behind the server's back."""

    name: str
    node: LocalNode
    kubernetes: FakeKubernetes | None = None
    fly: FakeFly | None = None
    #: the fake Fly API's base URL (the server is configured with it)
    fly_api_base: str = ""

    def runners(self) -> list[str]:
        """Pods or machines that exist now (not deleted or destroyed)."""
        if self.kubernetes is not None:
            return self.kubernetes.names("pods")
        assert self.fly is not None
        return [m.id for m in self.fly.live_machines()]

    def volumes(self) -> list[str]:
        if self.kubernetes is not None:
            return self.kubernetes.names("persistentvolumeclaims")
        assert self.fly is not None
        return sorted(self.fly.volumes)

    def running_processes(self) -> list[str]:
        return sorted(self.node.workloads)

    async def host_workspace(self, agent_id: str) -> Path:
        """The host folder behind the ``/workspace`` of pod or machine ``agent_id``, once
        the agent user owns it (a Fly runner adopts its fresh volume's folder as it boots)."""
        mounts = self.node.workloads[agent_id].mounts
        if "/workspace" in mounts:  # a pod: the PVC's workspace subPath
            return mounts["/workspace"]
        folder = mounts["/data"] / "workspace"  # a machine: the volume's workspace folder

        async def adopted() -> bool:
            return folder.is_dir() and folder.stat().st_uid != 0

        await wait_until(adopted, timeout=60.0, what=f"the runner of {agent_id} adopting {folder}")
        return folder


def write_kubeconfig(path: Path, server: str, namespace: str = "default") -> Path:
    """A kubeconfig for the fake API server (lightkube reads $KUBECONFIG)."""
    context = {"cluster": "fake", "user": "fake", "namespace": namespace}
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "fake", "cluster": {"server": server}}],
                "users": [{"name": "fake", "user": {"token": "fake-token"}}],
                "contexts": [{"name": "fake", "context": context}],
                "current-context": "fake",
            }
        )
    )
    return path


@pytest.fixture(params=["kubernetes", "fly"])
async def remote(
    request: pytest.FixtureRequest,
    agent_dirs: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Remote]:
    node = LocalNode(agent_dirs["base"] / "node")
    monkeypatch.delenv("POD_IP", raising=False)
    monkeypatch.delenv("AGCLUSTER_GATEWAY_URL", raising=False)
    if request.param == "kubernetes":
        fake = FakeKubernetes(node=node)
        await fake.start()
        kubeconfig = write_kubeconfig(agent_dirs["base"] / "kubeconfig", fake.url, NAMESPACE)
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
        yield Remote("kubernetes", node, kubernetes=fake)
        await fake.stop()
    else:
        fly = FakeFly(FLY_APP, FLY_TOKEN, node=node)
        base = await fly.serve()
        monkeypatch.setenv("FLY_API_TOKEN", FLY_TOKEN)
        yield Remote("fly", node, fly=fly, fly_api_base=base)
        await fly.close()


@pytest.fixture
def agcluster_config(remote: Remote) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "provider": remote.name,
        # the runners (on 127.0.0.N) call the gateway's TCP listener here; port 0: any
        "gateway_host": "127.0.0.1",
        "gateway_port": 0,
        "runner_start_timeout": 60.0,
    }
    if remote.name == "kubernetes":
        settings["kubernetes_namespace"] = NAMESPACE
    else:
        settings.update(fly_app=FLY_APP, fly_region="ams", fly_api_base=remote.fly_api_base)
    return settings
