"""Pure functions behind the docker provider: container specs, stats, exit reasons.

Nothing here talks to an engine; tests compare the results as data.  The container a
session gets (see the README's "Docker provider" section for the why of each line)::

    image      agcluster-agent:<version>           init     docker-init as pid 1
    users      the runner: root with six capabilities (below); the claude CLI and every
               tool: uid:gid (never root), no capabilities
    root fs    read-only                           no-new-privileges
    caps       cap_drop ALL, then CHOWN DAC_OVERRIDE FOWNER SETUID SETGID KILL
    tmpfs      /tmp, /home/agent (size-capped)     pids     pids_limit
    memory     resource_limits.memory, no swap     cpu      resource_limits.cpu
    network    none (config.network: bridge)       restart  never
    mounts     workspace → /workspace, socket dir → /run/agcluster,
               CLI state dir → /var/lib/agcluster/state; nothing else
    env        AGCLUSTER_CONFIG, AGCLUSTER_SESSION_TOKEN, the control token's digest,
               AGCLUSTER_ISOLATED=1, AGCLUSTER_NETWORK (config.network), HOME, LANG, ...;
               never a key, never the control token
    oom        the agent's shell commands go first (BASH_ENV raises their oom_score_adj)
"""

from __future__ import annotations

import pwd
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..runner.protocol import (
    ENV_CONFIG,
    ENV_ISOLATED,
    ENV_JUPYTER_TOOLS,
    ENV_NETWORK,
    ENV_RUNNER_TOKEN_SHA256,
    ENV_SESSION_TOKEN,
    jupyter_tools_env,
    token_digest,
)
from .base import RunnerSpec

__all__ = [
    "CONTAINER_HOME",
    "IMAGE_VERSION_LABEL",
    "OOM_FIRST",
    "RUNNER_CAPABILITIES",
    "RUNNER_SOCKET",
    "SOCKET_MOUNT",
    "STATE_MOUNT",
    "WORKSPACE_MOUNT",
    "ContainerSettings",
    "container_kwargs",
    "container_name",
    "exit_reason",
    "image_problem",
    "resolve_container_user",
    "runner_command",
    "stats_summary",
]

WORKSPACE_MOUNT = "/workspace"
SOCKET_MOUNT = "/run/agcluster"
#: the CLI's config dir, transcripts, tmp and home: on the host, so ``resume`` outlives
#: the container
STATE_MOUNT = "/var/lib/agcluster/state"
CONTAINER_HOME = "/home/agent"
#: in a folder of the runner's own (root's, made at start), so the agent's uid can
#: neither replace the socket nor plant one of its own in its place
RUNNER_SOCKET = "ctl/runner.sock"
#: what the root runner keeps of root (all else is dropped): SETUID/SETGID to start the
#: CLI as the agent's uid:gid, KILL to signal it, CHOWN/DAC_OVERRIDE/FOWNER for the
#: session's folders, which belong to that uid.  The CLI and its tools get none of them
RUNNER_CAPABILITIES = ("CHOWN", "DAC_OVERRIDE", "FOWNER", "SETUID", "SETGID", "KILL")
GATEWAY_SOCKET = "gateway.sock"
#: the label ``jupyter agcluster build-image`` puts on the image: the project version
IMAGE_VERSION_LABEL = "org.agcluster.version"
BUILD_COMMAND = "jupyter agcluster build-image"
#: bash expands $BASH_ENV before sourcing it: the command substitution raises the
#: shell's own oom_score_adj (raising needs no privilege) and leaves nothing to source
OOM_FIRST = "$({ echo 1000 > /proc/$$/oom_score_adj; } 2>/dev/null)"


@dataclass(frozen=True)
class ContainerSettings:
    """Server-wide settings of every session container (per-session ones are in the spec)."""

    image: str
    uid: int
    gid: int
    pids_limit: int = 512
    tmp_size: str = "256m"
    home_size: str = "64m"
    #: the network of configs with ``network: true``
    network: str = "bridge"
    log_max_size: str = "10m"


def resolve_container_user(
    agent_user: str,
    *,
    euid: int,
    egid: int,
    lookup: Callable[[str], pwd.struct_passwd] = pwd.getpwnam,
) -> tuple[int, int]:
    """The uid:gid containers run as: the server's own, or ``agent_user``'s when root.

    ``agent_user`` is a user name or ``uid[:gid]``.  Files the agent writes then belong
    to the Jupyter user, or to an unprivileged user when Jupyter runs as root.
    """
    if euid != 0:
        return euid, egid
    name = agent_user.strip()
    if name.replace(":", "").isdigit() and name.count(":") <= 1:
        uid_text, _, gid_text = name.partition(":")
        uid, gid = int(uid_text), int(gid_text or uid_text)
    else:
        try:
            entry = lookup(name)
        except KeyError:
            raise ValueError(
                f"AgClusterApp.agent_user {agent_user!r} is no user on this machine; name "
                "one, or give a numeric uid:gid"
            ) from None
        uid, gid = entry.pw_uid, entry.pw_gid
    if uid == 0:
        raise ValueError(
            f"AgClusterApp.agent_user {agent_user!r} is root; agents never run as root in "
            "their containers: name an unprivileged user"
        )
    return uid, gid


def container_name(session_id: str) -> str:
    return "agcluster-" + session_id.replace("-", "")[:12]


def runner_command(
    resume: str | None, agent_user: str = "", workspace_readonly: bool = False
) -> list[str]:
    cmd = [
        "python",
        "-m",
        "agcluster_jupyter.runner",
        "--listen",
        f"unix:{SOCKET_MOUNT}/{RUNNER_SOCKET}",
        "--workspace",
        WORKSPACE_MOUNT,
        "--state-dir",
        STATE_MOUNT,
        "--gateway",
        f"unix:{SOCKET_MOUNT}/{GATEWAY_SOCKET}",
    ]
    if resume:
        cmd += ["--resume", resume]
    if agent_user:
        cmd += ["--agent-user", agent_user]
    if workspace_readonly:
        cmd.append("--workspace-readonly")
    return cmd


def _bind(source: str, target: str, read_only: bool = False) -> dict[str, Any]:
    # the Engine API's own form: a missing source is an error (never created as root)
    return {
        "Type": "bind",
        "Source": source,
        "Target": target,
        "ReadOnly": read_only,
        "BindOptions": {"Propagation": "rprivate"},
    }


def _tmpfs(size: str) -> str:
    # exec: the workspace is executable anyway, noexec here would only break tools
    return f"rw,nosuid,nodev,exec,size={size},mode=1777"


def container_kwargs(spec: RunnerSpec, settings: ContainerSettings) -> dict[str, Any]:
    """``docker.containers.create(**kwargs)`` for the runner of ``spec``."""
    limits = spec.config.resource_limits
    memory = limits.memory_bytes
    name = container_name(spec.session_id)
    return {
        "image": settings.image,
        "command": runner_command(
            spec.resume, f"{settings.uid}:{settings.gid}", spec.workspace_readonly
        ),
        "name": name,
        "hostname": name,
        # the runner is root (with RUNNER_CAPABILITIES only) and starts the CLI as
        # uid:gid: the agent's processes cannot signal, ptrace or read it, nor reach
        # its socket's folder
        "user": "0:0",
        "working_dir": WORKSPACE_MOUNT,
        "environment": {
            ENV_CONFIG: spec.config.model_dump_json(),
            # worthless outside this session's gateway socket; never the API key
            ENV_SESSION_TOKEN: spec.session_token,
            # the digest only: the control token itself never enters the container
            ENV_RUNNER_TOKEN_SHA256: token_digest(spec.control_token),
            # what the agent is told: a container of its own, a network only if asked for
            ENV_ISOLATED: "1",
            ENV_NETWORK: "1" if spec.config.network else "0",
            ENV_JUPYTER_TOOLS: jupyter_tools_env(spec.jupyter_tools, spec.kernel_tools),
            "HOME": CONTAINER_HOME,
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "MPLBACKEND": "Agg",
            # every bash the agent's tools run (and all they start) becomes the OOM
            # killer's first choice: a runaway tool dies, not the claude CLI or the runner.
            # SHLVL: bash with a socket on stdin at level 1 takes itself for an rshd
            # shell and reads ~/.bashrc instead of $BASH_ENV (the CLI's tool shells do)
            "BASH_ENV": OOM_FIRST,
            "SHLVL": "1",
        },
        "labels": dict(spec.labels),
        "init": True,
        "read_only": True,
        "cap_drop": ["ALL"],
        "cap_add": list(RUNNER_CAPABILITIES),
        "security_opt": ["no-new-privileges"],
        "privileged": False,
        "ipc_mode": "private",
        "tmpfs": {"/tmp": _tmpfs(settings.tmp_size), CONTAINER_HOME: _tmpfs(settings.home_size)},
        "mounts": [
            # a folder workspace given read-only: the engine refuses every write to it
            _bind(str(spec.workspace), WORKSPACE_MOUNT, read_only=spec.workspace_readonly),
            _bind(str(spec.socket_dir), SOCKET_MOUNT),
            _bind(str(spec.state_dir), STATE_MOUNT),
        ],
        "pids_limit": settings.pids_limit,
        "mem_limit": memory,
        # equal to mem_limit: no swap beyond the memory limit
        "memswap_limit": memory,
        "nano_cpus": int(limits.cpu * 1e9),
        # model calls go through the gateway's unix socket: no network needed
        "network_mode": settings.network if spec.config.network else "none",
        "restart_policy": {"Name": "no"},
        "log_config": {
            "type": "json-file",
            "config": {"max-size": settings.log_max_size, "max-file": "2"},
        },
        "stdin_open": False,
        "tty": False,
    }


def image_problem(image: str, labels: dict[str, str] | None, version: str) -> str | None:
    """Why ``image`` (its labels; None when missing) cannot run sessions, or None."""
    build = f"build it with `{BUILD_COMMAND}`"
    if labels is None:
        return f"the agent image {image} is not in the Docker engine; {build}"
    found = labels.get(IMAGE_VERSION_LABEL)
    if found != version:
        return (
            f"the agent image {image} was built for agcluster-jupyter {found or '(unknown)'}, "
            f"this server is {version}; rebuild it with `{BUILD_COMMAND}`"
        )
    return None


def exit_reason(state: dict[str, Any], limits_memory: str = "", logs: str = "") -> str:
    """One line on why a container stopped, from ``inspect``'s ``State`` (and log tail)."""
    code = state.get("ExitCode")
    # OOMKilled stays set after any OOM kill in the container; a clean exit is no OOM death
    if state.get("OOMKilled") and code != 0:
        where = f" at its {limits_memory} memory limit" if limits_memory else ""
        reason = f"ran out of memory{where} and was killed (out of memory)"
    elif state.get("Error"):
        reason = f"failed: {state['Error']}"
    elif code == 137:
        reason = "was killed (SIGKILL, exit code 137)"
    elif code is not None:
        reason = f"exited with code {code}"
    else:
        reason = f"is {state.get('Status', 'gone')}"
    tail = " | ".join(line for line in logs.strip().splitlines()[-5:] if line.strip())
    return f"the agent container {reason}" + (f"; last output: {tail}" if tail else "")


def stats_summary(stats: dict[str, Any]) -> dict[str, Any]:
    """``{cpu_percent, memory_bytes, memory_limit_bytes, pids}`` from one stats sample."""
    cpu = stats.get("cpu_stats") or {}
    pre = stats.get("precpu_stats") or {}
    cpu_delta = (cpu.get("cpu_usage") or {}).get("total_usage", 0) - (
        pre.get("cpu_usage") or {}
    ).get("total_usage", 0)
    system_delta = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    online = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or [])
    percent = 0.0
    if cpu_delta > 0 and system_delta > 0 and pre.get("system_cpu_usage"):
        percent = cpu_delta / system_delta * (online or 1) * 100.0
    memory = stats.get("memory_stats") or {}
    detail = memory.get("stats") or {}
    # as `docker stats`: the page cache the kernel can drop is not the agent's memory
    cache = detail.get("total_inactive_file", detail.get("inactive_file", 0))
    usage = max(int(memory.get("usage", 0)) - int(cache), 0)
    return {
        "cpu_percent": round(percent, 2),
        "memory_bytes": usage,
        "memory_limit_bytes": int(memory.get("limit", 0)),
        "pids": int((stats.get("pids_stats") or {}).get("current", 0)),
    }
