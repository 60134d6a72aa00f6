"""Pure functions behind the ``fly`` provider: Machines API request bodies, as data.

Nothing here talks to Fly; tests compare the results as data.  What a session gets::

    machine   one Fly Machine per session, named agcluster-<session>, in ``region``
    guest     cpu_kind (shared|performance), cpus = ceil(resource_limits.cpu),
              memory_mb = resource_limits.memory rounded up to 256 MB
    image     the agent image (the same ``Dockerfile.agent``, pushed to a registry Fly
              can pull from)
    volume    one Fly Volume per session (size resource_limits.storage, at least 1 GB),
              mounted at /data: the workspace in /data/workspace, the claude CLI's state
              (transcripts, for resume) in /data/agent-state, so the files tab and the
              ZIP show the workspace only; it outlives the machine (purge deletes it)
    runner    ``--listen tcp:[::]:8765`` on Fly's private network only (no ``services``:
              nothing is exposed publicly), reached at the machine's 6PN address
              (``private_ip``, else ``<machine-id>.vm.<app>.internal``) with the
              per-session runner bearer token; Fly runs it as root on a root-owned
              volume, so it adopts the workspace for the image's ``agent`` user and runs
              the claude CLI as that user
    env       AGCLUSTER_CONFIG, the tokens, AGCLUSTER_ISOLATED=1, AGCLUSTER_NETWORK=1 (a
              Machine has an outbound network whatever config.network says), HOME, ...
    gateway   model calls go to ``gateway_url`` (the server's gateway over TCP) with the
              per-session gateway token; never the Anthropic key
    metadata  the session's LABEL_* labels (recovery lists machines by them)
    restart   policy "no"; auto_destroy false (a stopped machine can be started again)
"""

from __future__ import annotations

import math
import re
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
    "FLY_API_BASE",
    "RUNNER_PORT",
    "STATE_PATH",
    "VOLUME_MOUNT",
    "WORKSPACE_PATH",
    "FlySettings",
    "guest",
    "machine_config",
    "machine_name",
    "machine_request",
    "runner_command",
    "runner_endpoint",
    "volume_name",
    "volume_request",
]

FLY_API_BASE = "https://api.machines.dev/v1"
#: where the session's volume is mounted, and its two folders
VOLUME_MOUNT = "/data"
WORKSPACE_PATH = "/data/workspace"
#: the CLI's config dir and transcripts (for ``resume``): on the volume, so they outlive
#: the machine (a Fly machine's root filesystem is reset at every start)
STATE_PATH = "/data/agent-state"
#: the runner's checkpoint store: root's (0700) in the volume's root-owned top folder,
#: out of the agent user's reach
CHECKPOINT_PATH = "/data/checkpoints"
CONTAINER_HOME = "/home/agent"
RUNNER_PORT = 8765
#: the image's non-root user (docker/Dockerfile.agent)
AGENT_USER = "agent"
#: Fly sizes memory in steps of 256 MB
MEMORY_STEP_MB = 256
_MIB = 1024**2
_GIB = 1024**3


@dataclass(frozen=True)
class FlySettings:
    """Server-wide settings of every session machine (per-session ones are in the spec)."""

    app: str
    image: str
    region: str
    #: where runners send model calls: the server's gateway, reachable from the app's
    #: private network (e.g. ``http://jupyter.internal:8899`` or an https URL)
    gateway_url: str
    cpu_kind: str = "shared"
    runner_port: int = RUNNER_PORT
    api_base: str = FLY_API_BASE


def _short(session_id: str) -> str:
    return re.sub(r"[^a-z0-9]", "", session_id.lower())[:20]


def machine_name(session_id: str) -> str:
    return "agcluster-" + _short(session_id)[:12]


def volume_name(session_id: str) -> str:
    """Fly volume names: lowercase letters, digits and underscores, at most 30 chars."""
    return "agcluster_" + _short(session_id)


def guest(cpu: float, memory_bytes: int, cpu_kind: str = "shared") -> dict[str, Any]:
    """The machine's ``guest``: whole CPUs (rounded up), memory rounded up to 256 MB."""
    memory_mb = math.ceil(memory_bytes / _MIB)
    memory_mb = max(MEMORY_STEP_MB, math.ceil(memory_mb / MEMORY_STEP_MB) * MEMORY_STEP_MB)
    return {"cpu_kind": cpu_kind, "cpus": max(1, math.ceil(cpu)), "memory_mb": memory_mb}


def runner_command(
    gateway_url: str, port: int, resume: str | None, checkpoint_max_bytes: int = 0
) -> list[str]:
    cmd = [
        "python",
        "-m",
        "agcluster_jupyter.runner",
        # Fly's private network (6PN) is IPv6: listen on every address of it
        "--listen",
        f"tcp:[::]:{port}",
        "--workspace",
        WORKSPACE_PATH,
        "--state-dir",
        STATE_PATH,
        # Fly runs the command as root and mounts volumes root-owned: the runner gives
        # the workspace to the image's agent user and runs the claude CLI as that user
        "--agent-user",
        AGENT_USER,
        "--adopt-workspace",
        "--gateway",
        gateway_url,
    ]
    if resume:
        cmd += ["--resume", resume]
    if checkpoint_max_bytes > 0:
        cmd += [
            "--checkpoint-dir",
            CHECKPOINT_PATH,
            "--checkpoint-max-bytes",
            str(checkpoint_max_bytes),
        ]
    return cmd


def runner_endpoint(
    app: str, machine_id: str, port: int = RUNNER_PORT, private_ip: str = ""
) -> str:
    """The runner's URL on the app's private network: the machine's 6PN address when the
    API gave it (no DNS lookup), else its ``.vm.<app>.internal`` name."""
    if private_ip:
        host = f"[{private_ip}]" if ":" in private_ip else private_ip
        return f"http://{host}:{port}"
    return f"http://{machine_id}.vm.{app}.internal:{port}"


def machine_config(spec: RunnerSpec, settings: FlySettings, volume_id: str) -> dict[str, Any]:
    """The ``config`` of ``POST /apps/{app}/machines`` for the runner of ``spec``."""
    limits = spec.config.resource_limits
    gateway = spec.gateway if spec.gateway.startswith(("http://", "https://")) else ""
    return {
        "image": settings.image,
        "guest": guest(limits.cpu, limits.memory_bytes, settings.cpu_kind),
        "env": {
            ENV_CONFIG: spec.config.model_dump_json(),
            # worthless outside this session's gateway; never the API key
            ENV_SESSION_TOKEN: spec.session_token,
            # the digest of the control token the runner requires on its own API (the
            # token itself stays with the server)
            ENV_RUNNER_TOKEN_SHA256: token_digest(spec.control_token),
            # what the agent is told: a VM of its own, and a Machine's outbound network
            # (Fly gives every Machine one; config.network changes nothing here)
            ENV_ISOLATED: "1",
            ENV_NETWORK: "1",
            ENV_JUPYTER_TOOLS: jupyter_tools_env(spec.jupyter_tools, spec.kernel_tools),
            "HOME": CONTAINER_HOME,
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "MPLBACKEND": "Agg",
        },
        "init": {
            "cmd": runner_command(
                gateway or settings.gateway_url,
                settings.runner_port,
                spec.resume,
                spec.checkpoint_max_bytes,
            )
        },
        "mounts": [{"volume": volume_id, "path": VOLUME_MOUNT}],
        "metadata": dict(spec.labels),
        "restart": {"policy": "no"},
        "auto_destroy": False,
    }


def machine_request(spec: RunnerSpec, settings: FlySettings, volume_id: str) -> dict[str, Any]:
    """The whole body of ``POST /apps/{app}/machines``."""
    return {
        "name": machine_name(spec.session_id),
        "region": settings.region,
        "config": machine_config(spec, settings, volume_id),
    }


def volume_request(session_id: str, storage_bytes: int, region: str) -> dict[str, Any]:
    """The body of ``POST /apps/{app}/volumes``: the session's workspace volume."""
    return {
        "name": volume_name(session_id),
        "region": region,
        "size_gb": max(1, math.ceil(storage_bytes / _GIB)),
        "encrypted": True,
    }
