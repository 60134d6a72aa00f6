"""DockerProvider's engine handling with a stand-in client: retries, errors, health,
listing and stats caching (the real engine is in tests/e2e/test_docker_*.py)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import requests.exceptions

from agcluster_jupyter._version import __version__
from agcluster_jupyter.providers.base import (
    ProviderError,
    ProviderUnavailable,
    RunnerHandle,
    RunnerStatus,
)
from agcluster_jupyter.providers.docker import DockerProvider
from agcluster_jupyter.providers.docker_engine import docker_sdk
from agcluster_jupyter.providers.docker_spec import ContainerSettings

#: the SDK's exceptions (untyped; by name, not the checkout's docker/ folder)
docker_errors = docker_sdk("docker.errors")

SETTINGS = ContainerSettings(image="agcluster-agent:test", uid=1000, gid=1000)


class FakeAPI:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.image_labels: dict[str, str] | None = {"org.agcluster.version": __version__}
        self.failures: list[BaseException] = []
        self.containers_list: list[dict[str, Any]] = []

    def _maybe_fail(self, name: str) -> None:
        self.calls.append(name)
        if self.failures:
            raise self.failures.pop(0)

    def inspect_image(self, image: str) -> dict[str, Any]:
        self._maybe_fail("inspect_image")
        if self.image_labels is None:
            raise docker_errors.ImageNotFound("no such image")
        return {"Config": {"Labels": self.image_labels}}

    def inspect_container(self, container_id: str) -> dict[str, Any]:
        self._maybe_fail("inspect_container")
        if container_id == "gone":
            raise docker_errors.NotFound("no such container")
        return {"Id": container_id, "State": {"Running": container_id == "up"}}

    def containers(self, all: bool, filters: dict[str, Any]) -> list[dict[str, Any]]:
        self._maybe_fail("containers")
        return self.containers_list

    def stats(self, container_id: str, stream: bool, one_shot: bool) -> dict[str, Any]:
        self._maybe_fail("stats")
        n = self.calls.count("stats")
        return {
            "cpu_stats": {
                "cpu_usage": {"total_usage": n * 1_000_000_000},
                "system_cpu_usage": n * 4_000_000_000,
                "online_cpus": 2,
            },
            "memory_stats": {"usage": 100 * 1024**2, "limit": 1024**3, "stats": {}},
            "pids_stats": {"current": 9},
        }


class FakeClient:
    def __init__(self) -> None:
        self.api = FakeAPI()

    def ping(self) -> bool:
        self.api._maybe_fail("ping")
        return True

    def close(self) -> None:
        pass


def make(client: FakeClient, retries: int = 2) -> DockerProvider:
    return DockerProvider(SETTINGS, retries=retries, client_factory=lambda: client)


def handle(container_id: str) -> RunnerHandle:
    return RunnerHandle("docker", "sid", container_id, "unix:/nonexistent/runner.sock")


async def test_health_ok_and_image_problems() -> None:
    client = FakeClient()
    provider = make(client)
    health = await provider.health()
    assert health.ok and health.isolated
    client.api.image_labels = None
    health = await provider.health()
    assert not health.ok
    assert "not in the Docker engine" in health.detail
    assert "jupyter agcluster build-image" in health.detail
    client.api.image_labels = {"org.agcluster.version": "0.0.1"}
    health = await provider.health()
    assert not health.ok and "0.0.1" in health.detail
    await provider.close()


async def test_unreachable_engine_is_retried_then_names_the_socket(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///run/nowhere/docker.sock")
    client = FakeClient()
    refused = requests.exceptions.ConnectionError(FileNotFoundError(2, "No such file or directory"))
    client.api.failures = [refused] * 10
    provider = make(client, retries=2)
    started = time.monotonic()
    with pytest.raises(ProviderUnavailable) as info:
        await provider.status(handle("up"))
    assert time.monotonic() - started < 2  # bounded: 0.1 + 0.2 s of backoff
    assert client.api.calls.count("inspect_container") == 3
    message = str(info.value)
    assert "unix:///run/nowhere/docker.sock" in message
    assert "start dockerd or set DOCKER_HOST" in message
    health = await provider.health()
    assert not health.ok and "unix:///run/nowhere/docker.sock" in health.detail
    await provider.close()


async def test_transient_errors_recover_and_refusals_do_not_retry() -> None:
    client = FakeClient()
    provider = make(client, retries=3)
    busy = docker_errors.APIError("busy", response=_response(500))
    client.api.failures = [busy, requests.exceptions.ReadTimeout("slow")]
    assert await provider.status(handle("up")) is RunnerStatus.RUNNING
    assert client.api.calls.count("inspect_container") == 3

    client.api.calls.clear()
    client.api.failures = [docker_errors.APIError("conflict", response=_response(409))]
    with pytest.raises(ProviderError):
        await provider.status(handle("up"))
    assert client.api.calls.count("inspect_container") == 1
    await provider.close()


async def test_status_of_running_exited_and_missing_containers() -> None:
    provider = make(FakeClient())
    assert await provider.status(handle("up")) is RunnerStatus.RUNNING
    assert await provider.status(handle("down")) is RunnerStatus.EXITED
    assert await provider.status(handle("gone")) is RunnerStatus.MISSING
    assert await provider.exit_reason(handle("up")) is None
    assert "gone" in (await provider.exit_reason(handle("gone")) or "")
    await provider.close()


async def test_list_runners_finds_the_socket_from_the_mounts(tmp_path: Path) -> None:
    client = FakeClient()
    client.api.containers_list = [
        {
            "Id": "abc",
            "Names": ["/agcluster-0123"],
            "State": "exited",
            "Labels": {"agcluster.session-id": "s-1"},
            "Mounts": [
                {"Source": "/ws", "Destination": "/workspace"},
                {"Source": str(tmp_path), "Destination": "/run/agcluster"},
            ],
        },
        {"Id": "no-label", "Names": ["/x"], "Labels": {}},
    ]
    (found,) = await make(client).list_runners({"agcluster.owner": "alice"})
    assert found.session_id == "s-1" and found.agent_id == "abc"
    assert found.endpoint == f"unix:{tmp_path}/ctl/runner.sock"
    assert found.extra == {"container": "agcluster-0123", "state": "exited"}


async def test_resources_are_cached_and_cpu_comes_from_two_samples() -> None:
    client = FakeClient()
    provider = make(client)
    first = await provider.resources(handle("up"))
    assert first == {
        "cpu_percent": 0.0,
        "memory_bytes": 100 * 1024**2,
        "memory_limit_bytes": 1024**3,
        "pids": 9,
    }
    assert await provider.resources(handle("up")) == first  # cached, no engine call
    assert client.api.calls.count("stats") == 1
    # an old sample is answered at once while a fresh one is taken in the background
    provider._stats["up"] = (time.monotonic() - 60, first)
    assert await provider.resources(handle("up")) == first
    await provider._sampling["up"]
    fresh = await provider.resources(handle("up"))
    assert fresh["cpu_percent"] == 50.0  # 1 s of CPU over 4 s of system time, 2 cores
    await provider.close()


def _response(status: int) -> Any:
    class Response:
        status_code = status
        reason = "x"
        url = "http://docker/x"

    return Response()
