"""The docker provider's container specs, stats and exit reasons, compared as data."""

from __future__ import annotations

import dataclasses
import json
import pwd
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
from agcluster_jupyter.providers.docker_spec import (
    ContainerSettings,
    container_kwargs,
    container_name,
    exit_reason,
    image_problem,
    resolve_container_user,
    runner_command,
    stats_summary,
)
from agcluster_jupyter.runner.protocol import token_digest

CONTROL_TOKEN = "the-runner-control-token"
SID = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
TOKEN = "per-session-token-abc"
SERVER_KEY = "sk-ant-never-in-a-container"

SETTINGS = ContainerSettings(image="agcluster-agent:0.1.0", uid=65534, gid=65534)


def make_spec(tmp_path: Path, resume: str | None = None, **config: object) -> RunnerSpec:
    cfg = AgentConfig.model_validate(
        {
            "id": "code-assistant",
            "allowed_tools": ["Bash"],
            "resource_limits": {"cpu": 1.5, "memory": "1g", "storage": "2g"},
            **config,
        }
    )
    return RunnerSpec(
        session_id=SID,
        config=cfg,
        workspace=tmp_path / "ws",
        state_dir=tmp_path / "state",
        socket_dir=tmp_path / "s",
        session_token=TOKEN,
        gateway=f"unix:{tmp_path / 's' / 'gateway.sock'}",
        owner="alice",
        resume=resume,
        labels={
            LABEL_SESSION: SID,
            LABEL_CONFIG: "code-assistant",
            LABEL_OWNER: "alice",
            LABEL_VERSION: "0.1.0",
        },
        control_token=CONTROL_TOKEN,
    )


def bind(source: Path, target: str) -> dict[str, object]:
    return {
        "Type": "bind",
        "Source": str(source),
        "Target": target,
        "ReadOnly": False,
        "BindOptions": {"Propagation": "rprivate"},
    }


def test_container_spec_is_hardened(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    kwargs = container_kwargs(spec, SETTINGS)
    env = kwargs.pop("environment")
    assert kwargs == {
        "image": "agcluster-agent:0.1.0",
        "command": [
            "python",
            "-m",
            "agcluster_jupyter.runner",
            "--listen",
            # in the root runner's own folder: the agent's uid cannot replace it
            "unix:/run/agcluster/ctl/runner.sock",
            "--workspace",
            "/workspace",
            "--state-dir",
            "/var/lib/agcluster/state",
            "--gateway",
            "unix:/run/agcluster/gateway.sock",
            # the CLI and every tool run as the Jupyter user's (here: agent_user's) ids
            "--agent-user",
            "65534:65534",
        ],
        "name": "agcluster-0f1e2d3c4b5a",
        "hostname": "agcluster-0f1e2d3c4b5a",
        # the runner: root with six capabilities, out of the agent's reach
        "user": "0:0",
        "working_dir": "/workspace",
        "labels": spec.labels,
        "init": True,
        "read_only": True,
        "cap_drop": ["ALL"],
        "cap_add": ["CHOWN", "DAC_OVERRIDE", "FOWNER", "SETUID", "SETGID", "KILL"],
        "security_opt": ["no-new-privileges"],
        "privileged": False,
        "ipc_mode": "private",
        "tmpfs": {
            "/tmp": "rw,nosuid,nodev,exec,size=256m,mode=1777",
            "/home/agent": "rw,nosuid,nodev,exec,size=64m,mode=1777",
        },
        "mounts": [
            bind(tmp_path / "ws", "/workspace"),
            bind(tmp_path / "s", "/run/agcluster"),
            bind(tmp_path / "state", "/var/lib/agcluster/state"),
        ],
        "pids_limit": 512,
        "mem_limit": 1024**3,
        "memswap_limit": 1024**3,
        "nano_cpus": 1_500_000_000,
        "network_mode": "none",
        "restart_policy": {"Name": "no"},
        "log_config": {"type": "json-file", "config": {"max-size": "10m", "max-file": "2"}},
        "stdin_open": False,
        "tty": False,
    }
    assert set(env) == {
        "AGCLUSTER_CONFIG",
        "AGCLUSTER_SESSION_TOKEN",
        "AGCLUSTER_RUNNER_TOKEN_SHA256",
        "AGCLUSTER_ISOLATED",
        "AGCLUSTER_NETWORK",
        "AGCLUSTER_JUPYTER_TOOLS",
        "HOME",
        "LANG",
        "PYTHONUNBUFFERED",
        "PYTHONDONTWRITEBYTECODE",
        "MPLBACKEND",
        "BASH_ENV",
        "SHLVL",
    }
    assert env["BASH_ENV"] == "$({ echo 1000 > /proc/$$/oom_score_adj; } 2>/dev/null)"
    assert env["AGCLUSTER_SESSION_TOKEN"] == TOKEN
    # the digest of the control token, never the token
    assert env["AGCLUSTER_RUNNER_TOKEN_SHA256"] == token_digest(CONTROL_TOKEN)
    assert CONTROL_TOKEN not in json.dumps(kwargs) + json.dumps(env)
    assert env["HOME"] == "/home/agent"
    assert AgentConfig.model_validate_json(env["AGCLUSTER_CONFIG"]) == spec.config
    # what the agent is told about where it runs: a container, no network
    assert (env["AGCLUSTER_ISOLATED"], env["AGCLUSTER_NETWORK"]) == ("1", "0")


def test_no_key_anywhere_in_the_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", SERVER_KEY)
    kwargs = container_kwargs(make_spec(tmp_path), SETTINGS)
    text = json.dumps(kwargs)
    assert SERVER_KEY not in text
    assert "ANTHROPIC" not in text


def test_only_workspace_sockets_and_state_are_mounted(tmp_path: Path) -> None:
    kwargs = container_kwargs(make_spec(tmp_path), SETTINGS)
    assert [m["Target"] for m in kwargs["mounts"]] == [
        "/workspace",
        "/run/agcluster",
        "/var/lib/agcluster/state",
    ]
    assert "volumes" not in kwargs and "devices" not in kwargs and "volumes_from" not in kwargs


def test_network_only_for_configs_that_need_it(tmp_path: Path) -> None:
    assert container_kwargs(make_spec(tmp_path), SETTINGS)["network_mode"] == "none"
    web = make_spec(tmp_path, allowed_tools=["WebFetch", "Read"])
    assert web.config.network is True
    assert container_kwargs(web, SETTINGS)["network_mode"] == "bridge"
    assert container_kwargs(web, SETTINGS)["environment"]["AGCLUSTER_NETWORK"] == "1"
    custom = ContainerSettings(image="i", uid=1, gid=1, network="agents-egress")
    assert container_kwargs(web, custom)["network_mode"] == "agents-egress"


def test_resume_and_sizes(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, resume="sdk-123", resource_limits={"cpu": 0.25, "memory": "256m"})
    settings = ContainerSettings(image="i", uid=1000, gid=100, pids_limit=64, tmp_size="1g")
    kwargs = container_kwargs(spec, settings)
    assert kwargs["command"][-4:] == ["--resume", "sdk-123", "--agent-user", "1000:100"]
    assert kwargs["mem_limit"] == kwargs["memswap_limit"] == 256 * 1024**2
    assert kwargs["nano_cpus"] == 250_000_000
    assert kwargs["pids_limit"] == 64
    assert kwargs["user"] == "0:0"
    assert "size=1g" in kwargs["tmpfs"]["/tmp"]
    assert runner_command(None)[-2:] != ["--resume", None]


def test_container_name_is_short_and_stable() -> None:
    assert container_name(SID) == "agcluster-0f1e2d3c4b5a"
    assert container_name(SID) == container_name(SID)


def test_container_user() -> None:
    def lookup(name: str) -> pwd.struct_passwd:
        users = {"nobody": (65534, 65534), "root": (0, 0), "agent": (1000, 1000)}
        if name not in users:
            raise KeyError(name)
        uid, gid = users[name]
        return pwd.struct_passwd((name, "x", uid, gid, "", "/", "/bin/sh"))

    # not root: the Jupyter user's own ids, whatever agent_user says
    assert resolve_container_user("nobody", euid=1000, egid=100, lookup=lookup) == (1000, 100)
    # root: the agent user's
    assert resolve_container_user("nobody", euid=0, egid=0, lookup=lookup) == (65534, 65534)
    assert resolve_container_user("4242", euid=0, egid=0, lookup=lookup) == (4242, 4242)
    assert resolve_container_user("4242:100", euid=0, egid=0, lookup=lookup) == (4242, 100)
    with pytest.raises(ValueError, match="root"):
        resolve_container_user("root", euid=0, egid=0, lookup=lookup)
    with pytest.raises(ValueError, match="root"):
        resolve_container_user("0:0", euid=0, egid=0, lookup=lookup)
    with pytest.raises(ValueError, match="no user"):
        resolve_container_user("ghost", euid=0, egid=0, lookup=lookup)


def test_image_problem_gives_the_build_command() -> None:
    assert image_problem("img:1", {"org.agcluster.version": "1"}, "1") is None
    missing = image_problem("img:1", None, "1")
    assert missing and "not in the Docker engine" in missing
    assert "jupyter agcluster build-image" in missing
    stale = image_problem("img:1", {"org.agcluster.version": "0.9"}, "1")
    assert stale and "0.9" in stale and "jupyter agcluster build-image" in stale
    unlabelled = image_problem("img:1", {}, "1")
    assert unlabelled and "(unknown)" in unlabelled


def test_exit_reasons() -> None:
    oom = exit_reason({"OOMKilled": True, "ExitCode": 137}, "256m", "a\nb\n")
    assert "out of memory" in oom and "256m" in oom and "last output: a | b" in oom
    # an earlier OOM kill of a tool does not make a clean exit an OOM death
    assert "out of memory" not in exit_reason({"OOMKilled": True, "ExitCode": 0})
    assert "code 3" in exit_reason({"ExitCode": 3, "Status": "exited"})
    assert "SIGKILL" in exit_reason({"ExitCode": 137})
    assert "failed: boom" in exit_reason({"Error": "boom", "ExitCode": 128})
    assert exit_reason({}).endswith("is gone")


def test_stats_summary() -> None:
    sample = {
        "cpu_stats": {
            "cpu_usage": {"total_usage": 3_000_000_000},
            "system_cpu_usage": 20_000_000_000,
            "online_cpus": 2,
        },
        "precpu_stats": {
            "cpu_usage": {"total_usage": 2_000_000_000},
            "system_cpu_usage": 18_000_000_000,
        },
        "memory_stats": {
            "usage": 300 * 1024**2,
            "limit": 1024**3,
            "stats": {"total_inactive_file": 100 * 1024**2},
        },
        "pids_stats": {"current": 7},
    }
    assert stats_summary(sample) == {
        "cpu_percent": 100.0,
        "memory_bytes": 200 * 1024**2,
        "memory_limit_bytes": 1024**3,
        "pids": 7,
    }
    # the first sample of a container has no previous one: 0 %, not a crash
    assert stats_summary({"cpu_stats": {}, "memory_stats": {}})["cpu_percent"] == 0.0
    assert stats_summary({}) == {
        "cpu_percent": 0.0,
        "memory_bytes": 0,
        "memory_limit_bytes": 0,
        "pids": 0,
    }


def test_a_read_only_folder_workspace_is_a_read_only_bind(tmp_path: Path) -> None:
    spec = dataclasses.replace(make_spec(tmp_path), folder_workspace=True, workspace_readonly=True)
    kwargs = container_kwargs(spec, SETTINGS)
    (workspace,) = [m for m in kwargs["mounts"] if m["Target"] == "/workspace"]
    assert workspace["ReadOnly"] is True and workspace["Source"] == str(spec.workspace)
    assert kwargs["command"][-1] == "--workspace-readonly"
    # the other mounts stay writable for the runner (sockets, the CLI's state)
    assert [m["ReadOnly"] for m in kwargs["mounts"] if m["Target"] != "/workspace"] == [
        False,
        False,
    ]
    plain = container_kwargs(make_spec(tmp_path), SETTINGS)
    assert "--workspace-readonly" not in plain["command"]
    assert all(m["ReadOnly"] is False for m in plain["mounts"])
