"""``AgClusterApp``: the server extension.  Every setting is a trait here, with help text.

The shared services (preset registry, provider, gateway, session manager) are built once
in ``initialize_settings`` and handed to every handler through route kwargs.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import secrets
import signal
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from jupyter_core.paths import jupyter_data_dir
from jupyter_server.extension.application import ExtensionApp
from traitlets import Bool, Enum, Float, Int, List, TraitError, Unicode, default

from ._version import __version__
from .gateway import Gateway
from .handlers import route_table
from .presets import PresetRegistry
from .providers.base import Provider
from .providers.local import LocalProvider
from .sessions.manager import ManagerSettings, SessionManager

__all__ = ["AgClusterApp"]


class AgClusterApp(ExtensionApp):
    name = "agcluster"
    description = "Claude Agent SDK agents in isolated containers, driven from Jupyter"
    load_other_extensions = True

    provider = Enum(
        ["auto", "local", "docker", "fly", "kubernetes"],
        default_value="auto",
        help="""Where agent runners live.  'auto' is docker when a Docker engine answers,
        else local (no isolation, with a warning in health and launch responses).""",
    ).tag(config=True)

    anthropic_base_url = Unicode(
        help="""Upstream of the gateway: the Anthropic Messages API (or any compatible
        server).  Default: $ANTHROPIC_BASE_URL, else https://api.anthropic.com.""",
    ).tag(config=True)

    @default("anthropic_base_url")
    def _default_base_url(self) -> str:
        return os.environ.get("ANTHROPIC_BASE_URL") or "https://api.anthropic.com"

    workspace_root = Unicode(
        help="""Folder holding one workspace folder per session.  Default: 'agent-workspaces'
        in the Jupyter root dir, so workspaces show up in the Jupyter file browser.""",
    ).tag(config=True)

    @default("workspace_root")
    def _default_workspace_root(self) -> str:
        root = getattr(self.serverapp, "root_dir", None) or os.getcwd()
        return str(Path(root) / "agent-workspaces")

    state_root = Unicode(
        help="""Session records and event logs (JSONL).  Default: agcluster/ in the Jupyter
        data dir.""",
    ).tag(config=True)

    @default("state_root")
    def _default_state_root(self) -> str:
        return str(Path(jupyter_data_dir()) / "agcluster")

    agent_state_root = Unicode(
        help="""The claude CLI's per-session config dir (kept so a relaunch resumes the
        conversation), tmp and home.  The agent user must be able to reach it.  Default:
        agent-state/ in state_root, or /var/tmp/agcluster-agent-state when the server runs
        as root (root's data dir is closed to the unprivileged agent user).""",
    ).tag(config=True)

    @default("agent_state_root")
    def _default_agent_state_root(self) -> str:
        if os.geteuid() == 0:
            return "/var/tmp/agcluster-agent-state"
        return str(Path(self.state_root) / "agent-state")

    socket_root = Unicode(
        help="""Folder for the per-session unix sockets (runner and gateway).  Kept short:
        unix socket paths are limited to 108 bytes.""",
    ).tag(config=True)

    @default("socket_root")
    def _default_socket_root(self) -> str:
        return str(Path(tempfile.gettempdir()) / f"agcluster-{os.geteuid()}")

    preset_paths = List(
        Unicode(),
        help="""Extra folders of preset YAML files; later folders override earlier ones and
        the built-in presets by id.""",
    ).tag(config=True)

    agent_image = Unicode(
        f"agcluster-agent:{__version__}",
        help="Container image of the agent runner (docker and kubernetes providers).",
    ).tag(config=True)

    agent_user = Unicode(
        "nobody",
        help="""When the server runs as root: the user the agent runs as (a name, or a
        numeric uid[:gid] for docker).  Local provider: the claude CLI runs as this user.
        Docker provider: containers run as its uid:gid, so the agent's files belong to it.
        A server not running as root runs agents as its own user.""",
    ).tag(config=True)

    idle_timeout = Float(
        3600.0,
        help="""Seconds without activity after which a session is stopped (workspace kept).
        A running turn is activity; reading files or listing sessions is not.  0 disables.""",
    ).tag(config=True)

    cleanup_interval = Float(60.0, help="Seconds between runs of the idle reaper.").tag(config=True)

    max_upload_bytes = Int(
        50 * 1024 * 1024, help="Largest file one upload may carry (413 beyond it)."
    ).tag(config=True)

    max_sessions = Int(20, help="Most sessions running at once (429 beyond it).").tag(config=True)

    warm_pool_size = Int(
        0,
        help="""Sessions of warm_pool_config kept started (runner up, CLI connected) so
        launching that preset is a claim instead of a start.  Any provider.""",
    ).tag(config=True)

    warm_pool_config = Unicode(
        "code-assistant", help="The preset the warm pool keeps sessions of."
    ).tag(config=True)

    token_budget = Int(
        0,
        help="""Default per-session token budget (input + output tokens) the gateway
        enforces; 0 means none.  A config's own token_budget wins.""",
    ).tag(config=True)

    runner_start_timeout = Float(
        60.0, help="Seconds a runner may take to answer its health check."
    ).tag(config=True)

    stop_sessions_on_shutdown = Bool(
        True,
        help="""On server shutdown stop every running session (True) or leave runners
        running for the restarted server to re-adopt (False).""",
    ).tag(config=True)

    docker_pids_limit = Int(
        512,
        help="""Docker provider: most processes (and threads) one session's container may
        run; a fork bomb stops there.""",
    ).tag(config=True)

    docker_tmp_size = Unicode(
        "256m",
        help="""Docker provider: size of the container's /tmp (a tmpfs; it counts against
        the session's memory limit).  The root filesystem is read-only.""",
    ).tag(config=True)

    docker_network = Unicode(
        "bridge",
        help="""Docker provider: the network of sessions whose config says network: true
        (research-agent).  Every other session gets none: model calls go through the
        gateway's unix socket.""",
    ).tag(config=True)

    storage_check_interval = Float(
        3.0,
        help="""Seconds between measurements of a busy session's workspace against its
        resource_limits.storage (the agent's turn is interrupted beyond it).""",
    ).tag(config=True)

    activity_interval = Float(
        10.0,
        help="""Seconds between reports of agent activity as the Jupyter server's own
        activity (its last_activity, which JupyterHub's idle culler reads): a session at
        work keeps the server alive.""",
    ).tag(config=True)

    demo_mode = Bool(
        False,
        help="""Play the model with the built-in scripted model server (replies are
        scripted, no API key needed).  For demos and offline trials.""",
    ).tag(config=True)

    # -- services --------------------------------------------------------------------------

    def _server_key(self) -> str | None:
        return self._key

    def _make_provider(self) -> Provider:
        choice = self.provider
        if choice == "auto":
            from .providers.docker import ping_engine

            # a short ping while the server starts (nothing is served yet)
            problem = ping_engine(timeout=2.0)
            if problem is None:
                choice = "docker"
            else:
                self.log.warning(
                    "agcluster: no Docker engine (%s); using the local provider: agents run "
                    "on this machine with NO ISOLATION",
                    problem,
                )
                choice = "local"
        if choice == "docker":
            return self._docker_provider()
        if choice == "local":
            return LocalProvider(
                agent_user=self.agent_user, start_timeout=self.runner_start_timeout
            )
        from .providers.unavailable import UnavailableProvider

        return UnavailableProvider(choice)

    def _docker_provider(self) -> Provider:
        from .providers.docker import DockerProvider
        from .providers.docker_spec import ContainerSettings, resolve_container_user

        try:
            uid, gid = resolve_container_user(self.agent_user, euid=os.geteuid(), egid=os.getegid())
        except ValueError as exc:
            raise TraitError(str(exc)) from None
        settings = ContainerSettings(
            image=self.agent_image,
            uid=uid,
            gid=gid,
            pids_limit=self.docker_pids_limit,
            tmp_size=self.docker_tmp_size,
            network=self.docker_network,
        )
        return DockerProvider(settings, start_timeout=self.runner_start_timeout)

    def initialize_settings(self) -> None:
        # the key lives in this process's memory only; runners get per-session tokens
        self._key: str | None = os.environ.get("ANTHROPIC_API_KEY") or None
        self._demo_server: Any = None
        upstream = self.anthropic_base_url
        if self.demo_mode:
            from .testing import ScriptedModelServer

            # its own thread and loop; a random key so nothing else can use it
            demo_key = secrets.token_urlsafe(16)
            self._demo_server = ScriptedModelServer(api_key=demo_key).start()
            upstream = self._demo_server.url
            self._key = demo_key
            self.log.warning("agcluster: DEMO MODE, replies are scripted (%s)", upstream)
        self.presets = PresetRegistry([Path(p) for p in self.preset_paths])
        self.gateway = Gateway(upstream, self._server_key)
        settings = ManagerSettings(
            state_root=Path(self.state_root),
            agent_state_root=Path(self.agent_state_root),
            socket_root=Path(self.socket_root),
            workspace_root=Path(self.workspace_root),
            idle_timeout=self.idle_timeout if self.idle_timeout > 0 else float("inf"),
            cleanup_interval=self.cleanup_interval,
            max_sessions=self.max_sessions,
            owner=os.environ.get("JUPYTERHUB_USER") or getpass.getuser(),
            stop_on_shutdown=self.stop_sessions_on_shutdown,
            default_token_budget=self.token_budget or None,
            storage_check_interval=self.storage_check_interval,
            activity_interval=self.activity_interval,
            warm_pool_size=self.warm_pool_size,
            warm_pool_config=(
                self.presets.get(self.warm_pool_config) if self.warm_pool_size > 0 else None
            ),
        )
        self.manager = SessionManager(
            settings, self._make_provider(), self.gateway, server_key=self._server_key
        )
        self.manager.activity_sink = self._report_activity
        self._stop_on_sigint()

    def _stop_on_sigint(self) -> None:
        """Under JupyterHub, SIGINT stops the server cleanly, sessions stopped.

        JupyterHub's LocalProcessSpawner (and SimpleLocalProcessSpawner) stops a single-user
        server with SIGINT.  Jupyter Server handles SIGINT only when stdin is a terminal;
        otherwise Python's KeyboardInterrupt ends the loop and the process exits without
        running any extension's stop, leaving every agent runner behind.  The
        jupyterhub-singleuser *extension* does not patch this (its older app subclass
        does), so under a hub, without a terminal, SIGINT takes the same path as SIGTERM.
        """
        if not os.environ.get("JUPYTERHUB_API_TOKEN") or (sys.stdin and sys.stdin.isatty()):
            return
        if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
            return  # someone handles it already
        serverapp = self.serverapp
        if serverapp is None:
            return

        def stop(sig: int, frame: Any) -> None:
            handler = getattr(serverapp, "_signal_stop", None)
            if handler is not None:
                handler(sig, frame)
            else:
                serverapp.stop(from_signal=True)

        try:
            signal.signal(signal.SIGINT, stop)
        except ValueError:  # not the main thread: leave it
            pass

    def initialize_handlers(self) -> None:
        self.handlers.extend(route_table({"manager": self.manager, "app": self}))

    async def _start_jupyter_server_extension(self, serverapp: Any) -> None:
        await self.manager.ensure_started()
        self.log.info(
            "agcluster %s: provider %s, upstream %s, %d sessions recovered",
            __version__,
            self.manager.provider.name,
            self.gateway.upstream,
            len(self.manager.sessions),
        )

    def _report_activity(self, last: float) -> None:
        # jupyter_server counts every setting named "*_last_activity" (a UTC datetime)
        # in its last_activity(), which jupyterhub-singleuser reports to the hub
        web_app = getattr(self.serverapp, "web_app", None)
        if web_app is not None:
            stamp = datetime.fromtimestamp(last, timezone.utc)
            web_app.settings["agcluster_last_activity"] = stamp

    async def stop_extension(self) -> None:
        await self.manager.shutdown()
        if self._demo_server is not None:
            demo, self._demo_server = self._demo_server, None
            await asyncio.to_thread(demo.stop)
