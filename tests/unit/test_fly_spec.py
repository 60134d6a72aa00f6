"""The fly provider's Machines API request bodies, compared as data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agcluster_jupyter.config import AgentConfig
from agcluster_jupyter.providers.base import (
    LABEL_CONFIG,
    LABEL_OWNER,
    LABEL_SESSION,
    LABEL_VERSION,
    RunnerSpec,
)
from agcluster_jupyter.providers.fly_spec import (
    FlySettings,
    guest,
    machine_config,
    machine_name,
    machine_request,
    runner_endpoint,
    volume_name,
    volume_request,
)
from agcluster_jupyter.runner.protocol import token_digest

SID = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
TOKEN = "per-session-gateway-token"
RUNNER_TOKEN = "per-session-runner-token"
SERVER_KEY = "sk-ant-never-in-a-machine"
LABELS = {
    LABEL_SESSION: SID,
    LABEL_CONFIG: "code-assistant",
    LABEL_OWNER: "alice",
    LABEL_VERSION: "0.1.0",
}
SETTINGS = FlySettings(
    app="agents",
    image="registry.fly.io/agents:0.1.0",
    region="ams",
    gateway_url="http://jupyter.internal:8899",
)


def make_spec(tmp_path: Path, resume: str | None = None, gateway: str = "") -> RunnerSpec:
    cfg = AgentConfig.model_validate(
        {
            "id": "code-assistant",
            "allowed_tools": ["Bash"],
            "resource_limits": {"cpu": 1.5, "memory": "1g", "storage": "2g"},
        }
    )
    return RunnerSpec(
        session_id=SID,
        config=cfg,
        workspace=tmp_path / "ws",
        state_dir=tmp_path / "state",
        socket_dir=tmp_path / "s",
        session_token=TOKEN,
        gateway=gateway or f"unix:{tmp_path / 's' / 'gateway.sock'}",
        owner="alice",
        resume=resume,
        labels=dict(LABELS),
        control_token=RUNNER_TOKEN,
    )


def test_machine_request_is_exactly_this(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    body = machine_request(spec, SETTINGS, "vol_123")
    assert body == {
        "name": "agcluster-0f1e2d3c4b5a",
        "region": "ams",
        "config": {
            "image": "registry.fly.io/agents:0.1.0",
            "guest": {"cpu_kind": "shared", "cpus": 2, "memory_mb": 1024},
            "env": {
                "AGCLUSTER_CONFIG": spec.config.model_dump_json(),
                "AGCLUSTER_SESSION_TOKEN": TOKEN,
                # the digest only: the control token never enters the machine
                "AGCLUSTER_RUNNER_TOKEN_SHA256": token_digest(RUNNER_TOKEN),
                # what the agent is told: a VM of its own, with Fly's outbound network
                "AGCLUSTER_ISOLATED": "1",
                "AGCLUSTER_NETWORK": "1",
                "AGCLUSTER_JUPYTER_TOOLS": "0",
                "HOME": "/home/agent",
                "LANG": "C.UTF-8",
                "PYTHONUNBUFFERED": "1",
                "PYTHONDONTWRITEBYTECODE": "1",
                "MPLBACKEND": "Agg",
            },
            "init": {
                "cmd": [
                    "python",
                    "-m",
                    "agcluster_jupyter.runner",
                    "--listen",
                    "tcp:[::]:8765",
                    "--workspace",
                    "/data/workspace",
                    "--state-dir",
                    "/data/agent-state",
                    "--agent-user",
                    "agent",
                    "--adopt-workspace",
                    "--gateway",
                    "http://jupyter.internal:8899",
                ]
            },
            # one volume: the workspace and the CLI's state side by side
            "mounts": [{"volume": "vol_123", "path": "/data"}],
            "metadata": LABELS,
            "restart": {"policy": "no"},
            "auto_destroy": False,
        },
    }
    # no public services: the runner is on the private network only
    assert "services" not in body["config"]


def test_the_machine_never_gets_the_api_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", SERVER_KEY)
    config = machine_config(make_spec(tmp_path), SETTINGS, "vol_1")
    text = json.dumps(config)
    assert SERVER_KEY not in text
    assert not any("ANTHROPIC" in key for key in config["env"])


def test_resume_and_an_http_gateway_in_the_spec(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, resume="sdk-1", gateway="https://gw.example/s/1")
    cmd = machine_config(spec, SETTINGS, "vol_1")["init"]["cmd"]
    assert cmd[-4:] == ["--gateway", "https://gw.example/s/1", "--resume", "sdk-1"]


@pytest.mark.parametrize(
    ("cpu", "memory", "kind", "expected"),
    [
        (1.0, 2 * 1024**3, "shared", {"cpu_kind": "shared", "cpus": 1, "memory_mb": 2048}),
        (0.5, 300 * 1024**2, "shared", {"cpu_kind": "shared", "cpus": 1, "memory_mb": 512}),
        (4.0, 100, "performance", {"cpu_kind": "performance", "cpus": 4, "memory_mb": 256}),
        (2.2, 8 * 1024**3 + 1, "shared", {"cpu_kind": "shared", "cpus": 3, "memory_mb": 8448}),
    ],
)
def test_guest_rounds_up(cpu: float, memory: int, kind: str, expected: dict[str, object]) -> None:
    assert guest(cpu, memory, kind) == expected


def test_volume_request_is_exactly_this() -> None:
    assert volume_request(SID, 2 * 1024**3, "ams") == {
        "name": "agcluster_0f1e2d3c4b5a69788796",
        "region": "ams",
        "size_gb": 2,
        "encrypted": True,
    }
    # at least 1 GB, rounded up
    assert volume_request(SID, 1, "ams")["size_gb"] == 1
    assert volume_request(SID, 5 * 1024**3 + 1, "ams")["size_gb"] == 6


def test_names_follow_fly_rules() -> None:
    name = volume_name("Some-ID_with.Odd/chars-0123456789abcdef")
    assert len(name) <= 30
    assert all(c.islower() or c.isdigit() or c == "_" for c in name)
    assert machine_name(SID) == "agcluster-0f1e2d3c4b5a"


def test_runner_endpoint_is_on_the_private_network() -> None:
    assert runner_endpoint("agents", "e784079b449483") == (
        "http://e784079b449483.vm.agents.internal:8765"
    )
    assert runner_endpoint("agents", "e7", 8765, "fdaa:0:1::3") == "http://[fdaa:0:1::3]:8765"
    assert runner_endpoint("agents", "e7", 9000, "10.0.0.7") == "http://10.0.0.7:9000"


def test_the_runner_keeps_the_checkpoints_in_the_volumes_root_owned_top(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    spec.checkpoint_max_bytes = 5 * 1024**3
    cmd = machine_config(spec, SETTINGS, "vol_1")["init"]["cmd"]
    assert cmd[-4:] == [
        "--checkpoint-dir",
        "/data/checkpoints",
        "--checkpoint-max-bytes",
        "5368709120",
    ]
    # not in the workspace nor in the agent user's state folder
    assert not cmd[cmd.index("--checkpoint-dir") + 1].startswith(
        ("/data/workspace", "/data/agent-state")
    )
