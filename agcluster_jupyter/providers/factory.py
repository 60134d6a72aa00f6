"""The provider a server runs, built from its settings (``AgClusterApp``'s traits).

``auto`` pings the Docker engine and falls back to ``local`` (no isolation, said in the
log); kubernetes and fly without their libraries or credentials become an
:class:`~.unavailable.UnavailableProvider` that says what is missing, so the server
still starts and ``/health`` tells the user.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .base import Provider
from .local import LocalProvider

__all__ = ["ProviderSettings", "build_provider", "local_workspace_root"]


@dataclass(frozen=True)
class ProviderSettings:
    """What the providers read of the server's settings (one field per trait)."""

    provider: str = "auto"
    agent_image: str = ""
    agent_user: str = ""
    runner_start_timeout: float = 60.0
    gateway_url: str = ""
    docker_pids_limit: int = 512
    docker_tmp_size: str = "256m"
    docker_network: str = ""
    kubernetes_namespace: str = "default"
    kubernetes_runtime_class: str = ""
    kubernetes_storage_class: str = ""
    kubernetes_server_pod_labels: Mapping[str, str] = field(default_factory=dict)
    kubernetes_server_namespace: str = ""
    fly_app: str = ""
    fly_region: str = ""
    fly_api_base: str = ""
    fly_cpu_kind: str = "shared"


def build_provider(settings: ProviderSettings, log: logging.Logger) -> Provider:
    """The provider ``settings.provider`` names (``auto``: docker if its engine answers).

    Raises ``ValueError`` for settings no provider can run with (an ``agent_user``
    docker cannot resolve).
    """
    choice = settings.provider
    if choice == "auto":
        from .docker_engine import ping_engine

        # a short ping while the server starts (nothing is served yet)
        problem = ping_engine(timeout=2.0)
        if problem is None:
            choice = "docker"
        else:
            log.warning(
                "agcluster: no Docker engine (%s); using the local provider: agents run "
                "on this machine with NO ISOLATION",
                problem,
            )
            choice = "local"
    if choice == "docker":
        return _docker_provider(settings)
    if choice == "local":
        return LocalProvider(
            agent_user=settings.agent_user, start_timeout=settings.runner_start_timeout
        )
    if choice == "kubernetes":
        return _kubernetes_provider(settings)
    return _fly_provider(settings)


def local_workspace_root(
    provider: LocalProvider,
    root: Path,
    *,
    configured: bool,
    claude_cli: Path | None,
    log: logging.Logger,
) -> Path:
    """The workspace root the local provider's agent user can reach.

    As root, agents run as ``agent_user``, who may not enter the Jupyter root (a home
    folder of mode 0700, /root).  A default workspace root it cannot reach moves to a
    folder it can (outside the Jupyter tree, said once); a ``configured`` one, or a
    claude CLI it cannot run, makes the provider refuse with the line that fixes it.
    """
    problem = provider.reach_problem(claude_cli) if claude_cli is not None else None
    if problem is not None:
        provider.refusal = (
            f"{problem}, so it cannot run the claude CLI ({claude_cli}): install "
            "agcluster-jupyter in a Python environment other users can read (./run.sh "
            "uses /opt/agcluster-venv when run as root), or use the docker provider"
        )
        log.error("agcluster: %s", provider.refusal)
        return root
    problem = provider.reach_problem(root)
    if problem is None:
        return root
    if configured:
        provider.refusal = (
            f"{problem}, so it cannot reach its workspaces in {root}: set "
            "AgClusterApp.workspace_root to a folder it can reach (e.g. /srv/agcluster)"
        )
        log.error("agcluster: %s", provider.refusal)
        return root
    digest = hashlib.sha256(str(root).encode()).hexdigest()[:12]
    moved = Path("/var/tmp/agcluster-workspaces") / digest
    moved.mkdir(parents=True, exist_ok=True)
    for folder in (moved.parent, moved):
        folder.chmod(0o755)
    log.warning(
        "agcluster: %s (the Jupyter root), so session workspaces are in %s, outside "
        "the Jupyter tree; set AgClusterApp.workspace_root to choose another folder",
        problem,
        moved,
    )
    return moved


def _docker_provider(settings: ProviderSettings) -> Provider:
    from .docker import DockerProvider
    from .docker_spec import ContainerSettings, resolve_container_user

    uid, gid = resolve_container_user(settings.agent_user, euid=os.geteuid(), egid=os.getegid())
    container = ContainerSettings(
        image=settings.agent_image,
        uid=uid,
        gid=gid,
        pids_limit=settings.docker_pids_limit,
        tmp_size=settings.docker_tmp_size,
        network=settings.docker_network,
    )
    return DockerProvider(container, start_timeout=settings.runner_start_timeout)


def _kubernetes_provider(settings: ProviderSettings) -> Provider:
    from .unavailable import UnavailableProvider

    try:
        from .kubernetes import KubernetesProvider
        from .kubernetes_spec import PodSettings
    except ImportError as exc:
        return UnavailableProvider(
            "kubernetes",
            f"the kubernetes provider needs lightkube ({exc}); "
            "pip install 'agcluster-jupyter[kubernetes]'",
        )
    pod = PodSettings(
        image=settings.agent_image,
        gateway_url=settings.gateway_url,
        runtime_class=settings.kubernetes_runtime_class or None,
        storage_class=settings.kubernetes_storage_class or None,
        server_pod_labels=dict(settings.kubernetes_server_pod_labels),
        server_namespace=settings.kubernetes_server_namespace or None,
    )
    return KubernetesProvider(
        pod,
        namespace=settings.kubernetes_namespace,
        start_timeout=max(settings.runner_start_timeout, 180.0),  # image pulls, PVC binding
    )


def _fly_provider(settings: ProviderSettings) -> Provider:
    from .fly import FlyProvider
    from .fly_spec import FlySettings
    from .unavailable import UnavailableProvider

    token = os.environ.get("FLY_API_TOKEN", "")
    missing = [
        what
        for what, value in (("$FLY_API_TOKEN", token), ("AgClusterApp.fly_app", settings.fly_app))
        if not value
    ]
    if missing:
        return UnavailableProvider(
            "fly", f"the fly provider needs {' and '.join(missing)}; set them and restart"
        )
    fly = FlySettings(
        app=settings.fly_app,
        image=settings.agent_image,
        region=settings.fly_region,
        gateway_url=settings.gateway_url,
        cpu_kind=settings.fly_cpu_kind,
        api_base=settings.fly_api_base,
    )
    return FlyProvider(fly, token, start_timeout=max(settings.runner_start_timeout, 120.0))
