"""FlyProvider against the fake Machines API (tests.support.fake_fly): the
lifecycle, the volume, recovery by metadata, retries and a refused token."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from agcluster_jupyter.config import AgentConfig
from agcluster_jupyter.providers.base import (
    LABEL_OWNER,
    LABEL_SESSION,
    ProviderError,
    ProviderUnavailable,
    RunnerSpec,
    RunnerStartError,
    RunnerStatus,
)
from agcluster_jupyter.providers.fly import FlyProvider
from agcluster_jupyter.providers.fly_spec import FlySettings
from agcluster_jupyter.runner.protocol import token_digest

from ..support.fake_fly import FakeFly

SID = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
TOKEN = "fly-test-token"
SERVER_KEY = "sk-ant-never-in-a-machine"
SETTINGS = FlySettings(
    app="agents",
    image="registry.fly.io/agents:0.1.0",
    region="ams",
    gateway_url="http://jupyter.internal:8899",
)


class FakeRunners:
    """Stands in for the runners on the private network: /health and /shutdown."""

    def __init__(self) -> None:
        self.tokens: dict[str, str] = {}
        self.calls: list[tuple[str, str]] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        self.calls.append((host, request.url.path))
        digest = self.tokens.get(host)  # what the machine was given: the digest
        given = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if digest is None or token_digest(given) != digest:
            return httpx.Response(401, json={"message": "a valid bearer token is required"})
        if request.url.path == "/health":
            return httpx.Response(200, json={"status": "ok"})
        return httpx.Response(200, json={"stopping": True})


@pytest.fixture
def fake() -> FakeFly:
    return FakeFly(app="agents", token=TOKEN, boot_delay=0.01)


@pytest.fixture
async def runners(fake: FakeFly) -> FakeRunners:
    return FakeRunners()


def make_provider(
    fake: FakeFly, runners: FakeRunners, token: str = TOKEN, **kwargs: object
) -> FlyProvider:
    # the runner's token is in the machine's env: the stand-in learns it from there
    async def runner_handler(request: httpx.Request) -> httpx.Response:
        for machine in fake.live_machines():
            host = machine.to_json("agents")["private_ip"]
            runners.tokens[host] = machine.config["env"]["AGCLUSTER_RUNNER_TOKEN_SHA256"]
        return runners.handle(request)

    options: dict[str, object] = {"backoff": 0.001, "start_timeout": 5.0, **kwargs}
    return FlyProvider(
        SETTINGS,
        token,
        transport=fake.transport(),
        runner_transport=httpx.MockTransport(runner_handler),
        **options,  # type: ignore[arg-type]
    )


@pytest.fixture
async def provider(fake: FakeFly, runners: FakeRunners) -> AsyncIterator[FlyProvider]:
    provider = make_provider(fake, runners)
    yield provider
    await provider.close()


def make_spec(tmp_path: Path, session_id: str = SID) -> RunnerSpec:
    cfg = AgentConfig.model_validate(
        {
            "id": "code-assistant",
            "allowed_tools": ["Bash"],
            "resource_limits": {"cpu": 2, "memory": "1g", "storage": "3g"},
        }
    )
    return RunnerSpec(
        session_id=session_id,
        config=cfg,
        workspace=tmp_path / "ws",
        state_dir=tmp_path / "state",
        socket_dir=tmp_path / "s",
        session_token="gateway-token",
        gateway="unix:/nowhere/gateway.sock",
        owner="alice",
        labels={LABEL_SESSION: session_id, LABEL_OWNER: "alice"},
        control_token="the-control-token",
    )


async def test_create_starts_a_machine_with_a_volume(
    provider: FlyProvider,
    fake: FakeFly,
    runners: FakeRunners,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", SERVER_KEY)
    handle = await provider.create(make_spec(tmp_path))
    machine = fake.machines[handle.agent_id]
    assert machine.state == "started"
    ip = machine.to_json("agents")["private_ip"]
    assert handle.endpoint == f"http://[{ip}]:8765"  # the 6PN address
    digest = machine.config["env"]["AGCLUSTER_RUNNER_TOKEN_SHA256"]
    assert handle.token and token_digest(handle.token) == digest  # the machine has no token
    assert machine.config["guest"] == {"cpu_kind": "shared", "cpus": 2, "memory_mb": 1024}
    # the runner answered /health with its bearer token
    assert (ip, "/health") in runners.calls
    (volume,) = fake.volumes.values()
    assert (volume.size_gb, volume.region, volume.attached_machine_id) == (3, "ams", machine.id)
    assert machine.config["mounts"] == [{"volume": volume.id, "path": "/data"}]
    # never the key, anywhere in what Fly was sent
    assert SERVER_KEY not in json.dumps(machine.config)
    assert not any("ANTHROPIC" in key for key in machine.config["env"])
    assert await provider.status(handle) == RunnerStatus.RUNNING
    assert (await provider.health()).ok


async def test_stop_suspend_start(provider: FlyProvider, fake: FakeFly, tmp_path: Path) -> None:
    handle = await provider.create(make_spec(tmp_path))
    await provider.stop_machine(handle)
    assert fake.machines[handle.agent_id].state == "stopped"
    assert await provider.status(handle) == RunnerStatus.EXITED
    assert await provider.exit_reason(handle) == "the Fly machine is stopped"
    await provider.start(handle)
    assert fake.machines[handle.agent_id].state == "started"
    await provider.suspend(handle)
    assert fake.machines[handle.agent_id].state == "suspended"
    await provider.start(handle)
    assert await provider.status(handle) == RunnerStatus.RUNNING


async def test_stop_keeps_the_volume_and_a_new_runner_reuses_it(
    provider: FlyProvider, fake: FakeFly, runners: FakeRunners, tmp_path: Path
) -> None:
    handle = await provider.create(make_spec(tmp_path))
    (volume_id,) = fake.volumes
    await provider.stop(handle)
    ip = fake.machines[handle.agent_id].to_json("agents")["private_ip"]
    assert (ip, "/shutdown") in runners.calls
    assert fake.machines[handle.agent_id].state == "destroyed"
    assert await provider.status(handle) == RunnerStatus.MISSING
    assert list(fake.volumes) == [volume_id]
    assert fake.volumes[volume_id].attached_machine_id is None
    # the session's next runner gets the same workspace
    again = await provider.create(
        dataclasses.replace(make_spec(tmp_path), control_token="the-next-control-token")
    )
    assert list(fake.volumes) == [volume_id]
    assert fake.machines[again.agent_id].config["mounts"][0]["volume"] == volume_id
    assert again.token != handle.token  # each runner its own (the manager makes them)


async def test_destroy_leaves_the_volume_purge_removes_it(
    provider: FlyProvider, fake: FakeFly, tmp_path: Path
) -> None:
    handle = await provider.create(make_spec(tmp_path))
    await provider.destroy(handle)
    assert not fake.live_machines()
    assert len(fake.volumes) == 1
    await provider.purge_workspace(handle.session_id, handle)
    assert fake.volumes == {}
    # purging again (or a running machine) is fine
    await provider.purge_workspace(handle.session_id, handle)
    running = await provider.create(make_spec(tmp_path))
    await provider.purge_workspace(running.session_id, running)
    assert fake.volumes == {} and not fake.live_machines()


async def test_a_stale_machine_of_the_session_is_replaced(
    provider: FlyProvider, fake: FakeFly, tmp_path: Path
) -> None:
    first = await provider.create(make_spec(tmp_path))
    await provider.stop_machine(first)  # kept, holding the volume
    second = await provider.create(make_spec(tmp_path))
    assert fake.machines[first.agent_id].state == "destroyed"
    assert fake.machines[second.agent_id].state == "started"


async def test_recovery_lists_machines_by_metadata(
    provider: FlyProvider, fake: FakeFly, tmp_path: Path
) -> None:
    mine = await provider.create(make_spec(tmp_path, "aaaa1111-0000-0000-0000-000000000000"))
    other_spec = make_spec(tmp_path, "bbbb2222-0000-0000-0000-000000000000")
    other_spec.labels[LABEL_OWNER] = "bob"
    await provider.create(other_spec)
    found = await provider.list_runners({LABEL_OWNER: "alice"})
    assert [(h.session_id, h.agent_id, h.endpoint) for h in found] == [
        (mine.session_id, mine.agent_id, mine.endpoint)
    ]
    assert found[0].extra["volume"] == mine.extra["volume"]
    assert ("GET", "/v1/apps/agents/machines?metadata.agcluster.owner=alice") in fake.requests
    assert len(await provider.list_runners({})) == 2


async def test_retries_on_503_then_succeeds(
    provider: FlyProvider, fake: FakeFly, tmp_path: Path
) -> None:
    handle = await provider.create(make_spec(tmp_path))
    fake.fail_next = [503, 503]
    assert await provider.status(handle) == RunnerStatus.RUNNING
    assert [r for r in fake.requests if r[1].endswith(handle.agent_id)][-3:] == [
        ("GET", f"/v1/apps/agents/machines/{handle.agent_id}")
    ] * 3


async def test_gives_up_after_bounded_retries(
    provider: FlyProvider, fake: FakeFly, tmp_path: Path
) -> None:
    fake.fail_next = [503] * 10
    before = len(fake.requests)
    with pytest.raises(ProviderUnavailable, match="answered 503.*gave up after 4 tries"):
        await provider.list_runners({})
    assert len(fake.requests) - before == 4


async def test_a_create_is_not_repeated_after_a_5xx(
    provider: FlyProvider, fake: FakeFly, tmp_path: Path
) -> None:
    await provider.create(make_spec(tmp_path))
    fake.fail_next = [429]  # 429: never processed, so the volume create is retried
    await provider.create(make_spec(tmp_path, "cccc3333-0000-0000-0000-000000000000"))
    assert len(fake.volumes) == 2
    # a 500 on a create may have created it: no blind repeat
    fake.fail_next = [500]
    before = len(fake.requests)
    with pytest.raises(ProviderError, match="500"):
        await provider._request(
            "POST", "/volumes", json={"name": "x", "region": "ams", "size_gb": 1}, idempotent=False
        )
    assert len(fake.requests) - before == 1
    assert len(fake.volumes) == 2


async def test_a_refused_token_is_a_clear_error(
    fake: FakeFly, runners: FakeRunners, tmp_path: Path
) -> None:
    provider = make_provider(fake, runners, token="wrong")
    try:
        health = await provider.health()
        assert not health.ok
        assert "refused the token (401" in health.detail and "'agents'" in health.detail
        with pytest.raises(ProviderUnavailable, match="refused the token"):
            await provider.create(make_spec(tmp_path))
        assert len(fake.requests) == 2  # no retries on 401
    finally:
        await provider.close()


async def test_an_unreachable_api_is_provider_unavailable(tmp_path: Path) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    provider = FlyProvider(
        SETTINGS, TOKEN, transport=httpx.MockTransport(refuse), backoff=0.001, retries=2
    )
    try:
        with pytest.raises(ProviderUnavailable, match="cannot be reached.*gave up after 3"):
            await provider.create(make_spec(tmp_path))
        assert not (await provider.health()).ok
    finally:
        await provider.close()


async def test_a_machine_that_never_starts_is_removed(
    fake: FakeFly, runners: FakeRunners, tmp_path: Path
) -> None:
    fake.hold_boot = True
    provider = make_provider(fake, runners, start_timeout=1.0)
    try:
        with pytest.raises(RunnerStartError, match="did not start in 1 s"):
            await provider.create(make_spec(tmp_path))
        assert not fake.live_machines()
        assert len(fake.volumes) == 1  # the workspace stays
    finally:
        await provider.close()


async def test_unknown_machine_is_missing(provider: FlyProvider, tmp_path: Path) -> None:
    handle = await provider.create(make_spec(tmp_path))
    handle.agent_id = "0000000000dead"
    assert await provider.status(handle) == RunnerStatus.MISSING
    await provider.destroy(handle)  # gone is fine


async def test_the_fake_is_strict_about_shapes(fake: FakeFly) -> None:
    async with httpx.AsyncClient(
        transport=fake.transport(),
        base_url="https://api.machines.dev/v1/apps/agents",
        headers={"Authorization": f"Bearer {TOKEN}"},
    ) as client:
        bad = await client.post("/machines", json={"config": {"image": "x", "cpus": 2}})
        assert bad.status_code == 400 and "cpus" in bad.json()["error"]
        bad = await client.post("/machines", json={"config": {}})
        assert bad.status_code == 400 and "image" in bad.json()["error"]
        bad = await client.post(
            "/machines", json={"config": {"image": "x", "guest": {"memory_mb": 300}}}
        )
        assert bad.status_code == 400 and "256" in bad.json()["error"]
        bad = await client.post(
            "/volumes", json={"name": "Bad-Name", "region": "ams", "size_gb": 1}
        )
        assert bad.status_code == 400
        bad = await client.post("/volumes", json={"name": "ok", "region": "ams"})
        assert bad.status_code == 400 and "size_gb" in bad.json()["error"]
        assert (await client.get("/machines/nope")).status_code == 404
        assert (await client.get("/nope")).status_code == 404
        ok = await client.post("/machines", json={"config": {"image": "x"}, "skip_launch": True})
        machine_id = ok.json()["id"]
        waited = await client.get(f"/machines/{machine_id}/wait", params={"timeout": "1"})
        assert waited.status_code == 408
        assert (
            await client.get(f"/machines/{machine_id}/wait", params={"timeout": "61"})
        ).status_code == 400
    async with httpx.AsyncClient(transport=fake.transport()) as anonymous:
        response = await anonymous.get("https://api.machines.dev/v1/apps/agents/machines")
        assert response.status_code == 401
