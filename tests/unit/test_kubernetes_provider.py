"""The kubernetes provider against a local fake of the Kubernetes REST API."""

from __future__ import annotations

import base64
import dataclasses
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from lightkube import KubeConfig
from tornado import httpserver, web

from agcluster_jupyter.config import AgentConfig
from agcluster_jupyter.providers.base import (
    LABEL_SESSION,
    LABEL_STATE_ROOT,
    RunnerSpec,
    RunnerStartError,
    RunnerStatus,
)
from agcluster_jupyter.providers.kubernetes import KubernetesProvider
from agcluster_jupyter.providers.kubernetes_spec import PodSettings
from agcluster_jupyter.runner.protocol import token_digest

from ..support.fake_kubernetes import FakeKubernetes

NS = "agents"
SID = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
STATE_ROOT = "/home/alice/.local/share/jupyter/agcluster"


class _Health(web.RequestHandler):
    def initialize(self, fake: FakeKubernetes) -> None:
        self.fake = fake

    def get(self) -> None:
        digests = {
            base64.b64decode(obj["data"]["AGCLUSTER_RUNNER_TOKEN_SHA256"]).decode()
            for (plural, _, _), obj in self.fake.objects.items()
            if plural == "secrets"
        }
        given = self.request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token_digest(given) not in digests:
            self.set_status(401)
            self.finish('{"message": "a valid bearer token is required"}')
            return
        self.finish(json.dumps({"status": "ok"}))


@pytest.fixture
async def fake() -> AsyncIterator[FakeKubernetes]:
    server = FakeKubernetes(schedule_delay=0.05)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def runner_port(fake: FakeKubernetes) -> AsyncIterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)
    http = httpserver.HTTPServer(web.Application([(r"/health", _Health, {"fake": fake})]))
    http.add_sockets([sock])
    yield sock.getsockname()[1]
    http.stop()


def kubeconfig(url: str) -> KubeConfig:
    return KubeConfig.from_dict(
        {
            "clusters": [{"name": "fake", "cluster": {"server": url}}],
            "users": [{"name": "u", "user": {"token": "fake-sa-token"}}],
            "contexts": [
                {"name": "fake", "context": {"cluster": "fake", "user": "u", "namespace": NS}}
            ],
            "current-context": "fake",
        }
    )


def provider_for(fake: FakeKubernetes, port: int, **kw: float) -> KubernetesProvider:
    settings = PodSettings(image="agent:1", gateway_url="http://gw:8890", port=port)
    return KubernetesProvider(
        settings,
        namespace=NS,
        config=kubeconfig(fake.url),
        call_timeout=kw.get("call_timeout", 5.0),
        backoff=0.01,
        start_timeout=kw.get("start_timeout", 10.0),
    )


def make_spec(session_id: str = SID) -> RunnerSpec:
    cfg = AgentConfig.model_validate({"id": "custom", "allowed_tools": ["Bash"]})
    return RunnerSpec(
        session_id=session_id,
        config=cfg,
        workspace=Path("/unused"),
        state_dir=Path("/unused"),
        socket_dir=Path("/unused"),
        session_token="sess-tok",
        gateway="http://gw:8890",
        labels={LABEL_SESSION: session_id, LABEL_STATE_ROOT: STATE_ROOT},
        control_token="the-control-token",
    )


async def test_create_stop_purge_and_recover(fake: FakeKubernetes, runner_port: int) -> None:
    provider = provider_for(fake, runner_port)
    try:
        assert (await provider.health()).ok
        handle = await provider.create(make_spec())
        assert handle.endpoint == f"http://127.0.0.1:{runner_port}"
        assert handle.token and handle.agent_id == "agcluster-0f1e2d3c4b5a"
        assert fake.names("pods") == ["agcluster-0f1e2d3c4b5a"]
        assert fake.names("persistentvolumeclaims") == ["agcluster-ws-0f1e2d3c4b5a"]
        assert fake.names("networkpolicies") == ["agcluster-0f1e2d3c4b5a"]
        assert fake.names("secrets") == ["agcluster-tok-0f1e2d3c4b5a"]
        # readiness came from a watch, not polling gets
        assert any("watch=true" in uri for _, uri in fake.requests)
        assert await provider.status(handle) is RunnerStatus.RUNNING

        # recovery: found by (sanitised) label; the control token is not in the cluster
        # (the Secret holds its digest): the server's session record has it
        found = await provider.list_runners({LABEL_STATE_ROOT: STATE_ROOT})
        assert [(h.session_id, h.endpoint, h.token) for h in found] == [(SID, handle.endpoint, "")]
        assert await provider.list_runners({LABEL_STATE_ROOT: "/elsewhere"}) == []

        await provider.stop(handle)
        assert fake.names("pods") == [] and fake.names("secrets") == []
        assert fake.names("networkpolicies") == []
        assert fake.names("persistentvolumeclaims") == ["agcluster-ws-0f1e2d3c4b5a"]
        assert await provider.status(handle) is RunnerStatus.MISSING

        # a relaunch of the same session reuses its workspace
        again = await provider.create(
            dataclasses.replace(make_spec(), control_token="the-next-control-token")
        )
        assert again.token == "the-next-control-token"  # the spec's: the Secret has its digest
        await provider.stop(again)
        await provider.purge_workspace(SID, again)
        assert fake.names("persistentvolumeclaims") == []
        await provider.purge_workspace(SID, None)  # purging twice is fine
        assert fake.names("persistentvolumeclaims") == []
    finally:
        await provider.close()


async def test_a_failed_pod_is_a_start_error_and_cleaned_up(
    fake: FakeKubernetes, runner_port: int
) -> None:
    fake.fail_pods = True
    provider = provider_for(fake, runner_port)
    try:
        with pytest.raises(RunnerStartError, match="exited with code 2"):
            await provider.create(make_spec())
        assert fake.names("pods") == [] and fake.names("secrets") == []
        assert fake.names("persistentvolumeclaims") == ["agcluster-ws-0f1e2d3c4b5a"]
    finally:
        await provider.close()


async def test_a_pod_never_ready_times_out(fake: FakeKubernetes, runner_port: int) -> None:
    fake.schedule_delay = 60.0
    provider = provider_for(fake, runner_port, start_timeout=0.5)
    try:
        with pytest.raises(RunnerStartError, match="not ready within"):
            await provider.create(make_spec())
        assert fake.names("pods") == []
    finally:
        await provider.close()


async def test_transient_api_errors_are_retried(fake: FakeKubernetes, runner_port: int) -> None:
    provider = provider_for(fake, runner_port)
    try:
        fake.fail_next = 2
        handle = await provider.create(make_spec())
        assert await provider.status(handle) is RunnerStatus.RUNNING
        await provider.stop(handle)
    finally:
        await provider.close()


async def test_an_unreachable_api_is_unhealthy() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    settings = PodSettings(image="agent:1", gateway_url="http://gw:8890")
    provider = KubernetesProvider(
        settings,
        namespace=NS,
        config=kubeconfig(f"http://127.0.0.1:{port}"),
        call_timeout=1.0,
        retries=2,
        backoff=0.01,
    )
    try:
        health = await provider.health()
        assert not health.ok and "did not answer" in health.detail
    finally:
        await provider.close()
