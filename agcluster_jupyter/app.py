"""``AgClusterApp``: the server extension.  Every setting is a trait here, with help text.

The shared services (preset registry, provider, gateway, session manager) are built once
in ``initialize_settings`` and handed to every handler through route kwargs.

Size: most of it is the traits and their help text (the one place settings live, as in
jupyter_server); the providers are built in ``providers/factory.py``.
"""

from __future__ import annotations

import asyncio
import dataclasses
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
from traitlets import (
    Bool,
    Dict,
    Enum,
    Float,
    Int,
    List,
    TraitError,
    Unicode,
    default,
    validate,
)

from ._version import __version__
from .gateway import Gateway, GatewayPolicy
from .gateway.pricing import ModelPrice, Pricing
from .gateway.routes import DEFAULT_ROUTES, RoutePolicy, parse_route
from .handlers import HandlerContext, route_table
from .kernels.door import KernelDoor
from .kernels.tools import KernelTools
from .notebooks import NotebookTools
from .notebooks.shared import SharedNotebooks
from .presets import PresetRegistry
from .providers.base import Provider
from .providers.factory import ProviderSettings, build_provider, local_workspace_root
from .providers.local import LocalProvider
from .sessions.manager import ManagerSettings, SessionManager
from .sessions.notebook_access import NotebookAccess
from .signing import never_sign_agent_output

__all__ = ["AgClusterApp"]


def _bundled_cli() -> Path | None:
    """The claude CLI the SDK bundles (what the agent user must be able to run)."""
    try:
        import claude_agent_sdk
    except ImportError:
        return None
    path = Path(claude_agent_sdk.__file__).parent / "_bundled" / "claude"
    return path if path.exists() else None


#: where a pod finds its own namespace (the service account's mount)
_SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


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
        in the Jupyter root dir, so workspaces show up in the Jupyter file browser.  With
        the local provider run as root, when agent_user cannot enter that folder (a home
        of mode 0700 such as /root), the default moves to /var/tmp/agcluster-workspaces/
        (said in the log).""",
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
        unix socket paths are limited to 108 bytes.  Default: agcluster-<uid> in the
        system's temporary folder ($TMPDIR, else /tmp).""",
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

    checkpoint_max_bytes = Int(
        2 * 1024**3,
        help="""Bytes of checkpoint objects kept per session (every turn records the
        workspace before it; unchanged files cost nothing).  Past it the oldest
        checkpoints are pruned, and the checkpoint list says from which turn on it is
        kept.  0 turns checkpoints off.""",
    ).tag(config=True)

    cost_budget_usd = Float(
        0.0,
        help="""Default per-session dollar budget the gateway enforces, in USD as its
        meter prices the calls (see model_prices); 0 means none.  A config's own
        cost_budget_usd wins.  Past it, model calls get 429 and so do new messages.""",
    ).tag(config=True)

    gateway_allowed_routes = List(
        Unicode(),
        list(DEFAULT_ROUTES),
        help="""The upstream calls the gateway lends the API key to, as "METHOD /path"
        with an optional "?name,name" of the query parameters allowed.  The default is
        what the bundled claude CLI calls: POST /v1/messages?beta and POST
        /v1/messages/count_tokens?beta.  Everything else gets 403 and never reaches the
        model API.  Each route you add lends your key to whatever runs in every session
        (a prompt-injected agent included) for that call: /v1/files reads and writes the
        files of your Anthropic account, /v1/messages/batches starts work no budget
        meters (only /v1/messages responses are metered), admin routes reach what the
        key allows.""",
    ).tag(config=True)

    gateway_allowed_models = List(
        Unicode(),
        help="""Models any session may call through the gateway (exact names); empty:
        any.  Include gateway_small_model if you want the CLI's side requests to work.
        A config that pins a model narrows its own session further.""",
    ).tag(config=True)

    gateway_small_model = Unicode(
        "claude-haiku-4-5",
        help="""The small model a session whose config pins a model may also call: room
        for the claude CLI's side requests (summaries; titles use the main model in
        CLI 2.1.332).  Empty: only the pinned model.""",
    ).tag(config=True)

    gateway_max_body_bytes = Int(
        32 * 1024 * 1024,
        help="""Largest request body the gateway forwards (413 beyond it); the Messages
        API's own limit is 32 MB.""",
    ).tag(config=True)

    model_prices = Dict(
        help="""Prices the gateway's dollar meter uses, per million tokens, by model-name
        prefix (the longest match wins), e.g. {"claude-opus": {"input": 4, "output":
        20}}; they add to and override the defaults (opus $4/$20, sonnet $3/$15, haiku
        $1/$5: what the bundled claude CLI charges).  Cache writes cost 1.25 × input,
        reads 0.1 ×.  A model no prefix matches is priced as the dearest.""",
    ).tag(config=True)

    @validate("gateway_allowed_routes")
    def _check_routes(self, proposal: Any) -> list[str]:
        for route in proposal["value"]:
            try:
                parse_route(route)
            except ValueError as exc:
                raise TraitError(f"gateway_allowed_routes: {exc}") from None
        return list(proposal["value"])

    @validate("model_prices")
    def _check_prices(self, proposal: Any) -> dict[str, Any]:
        for prefix, price in proposal["value"].items():
            ok = isinstance(price, dict) and set(price) == {"input", "output"}
            if not ok or not all(isinstance(v, (int, float)) and v >= 0 for v in price.values()):
                raise TraitError(
                    f"model_prices[{prefix!r}]: {{'input': USD, 'output': USD}} per "
                    f"million tokens, not {price!r}"
                )
        return dict(proposal["value"])

    permission_timeout = Float(
        0.0,
        help="""Seconds a tool call's permission request waits for an answer before it
        is denied; 0 (the default): it waits until someone answers (the panel, a
        widget, REST) or the turn ends.  A timeout shows in the session's log as a
        permission_answer by "timeout" and as an error in the chat.""",
    ).tag(config=True)

    kernel_tools = Bool(
        True,
        help="""Offer the `jupyter` MCP server's kernel tools (list_variables,
        inspect_variable, run_cell, run_code) to sessions whose kernel_access is not
        deny: the agent looks into, and with approval runs code in, the kernel the user
        runs for a granted notebook, only the kernel process the user granted (a restart
        needs a new grant), each call checked and logged here.  False: never offered.""",
    ).tag(config=True)

    kernel_call_timeout = Float(
        120.0,
        help="""Seconds a kernel tool call may run in the user's kernel; past it the
        kernel is interrupted and the agent is told.""",
    ).tag(config=True)

    allow_unattended_kernel_access = Bool(
        False,
        help="""Let a session with permission mode bypassPermissions have
        kernel_access allow (code of the agent's choosing run in the user's kernel with
        nobody asked).  Off: such a launch is a 400.""",
    ).tag(config=True)

    notebook_tools = Bool(
        True,
        help="""Offer each session the `jupyter` MCP server (list_notebooks, read_notebook,
        edit_notebook, create_notebook), run by this server through the runner channel:
        the agent reads and edits the user's notebooks it was granted (its workspace
        folder's, the launch's `notebooks`, the one whose %%agent cell started it), each
        call checked here against real paths; edits are checkpointed.  False: the tools
        are not offered.""",
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

    # -- remote providers (kubernetes, fly) ------------------------------------------------

    gateway_url = Unicode(
        help="""kubernetes and fly providers: the URL under which agent runners reach this
        server's model gateway (its TCP listener, gateway_port), e.g. a Kubernetes Service
        (http://jupyter.jhub.svc:8766) or a Fly private address.  Default:
        $AGCLUSTER_GATEWAY_URL, else http://$POD_IP:gateway_port when POD_IP is set (the
        downward API), else http://gateway_host:gateway_port.  Runners present a
        per-session token there; the API key never leaves this server.""",
    ).tag(config=True)

    @default("gateway_url")
    def _default_gateway_url(self) -> str:
        if os.environ.get("AGCLUSTER_GATEWAY_URL"):
            return os.environ["AGCLUSTER_GATEWAY_URL"]
        if os.environ.get("POD_IP"):
            return f"http://{os.environ['POD_IP']}:{self.gateway_port}"
        return ""

    gateway_host = Unicode(
        "0.0.0.0",
        help="kubernetes and fly providers: the address the gateway's TCP listener binds.",
    ).tag(config=True)

    gateway_port = Int(
        8766, help="kubernetes and fly providers: the port of the gateway's TCP listener."
    ).tag(config=True)

    kubernetes_namespace = Unicode(
        help="""kubernetes provider: the namespace of the session pods, PVCs, Secrets and
        NetworkPolicies.  Default: the server pod's own namespace (its service account's),
        else 'default'.""",
    ).tag(config=True)

    @default("kubernetes_namespace")
    def _default_kubernetes_namespace(self) -> str:
        try:
            return Path(_SERVICE_ACCOUNT_NAMESPACE).read_text(encoding="utf-8").strip()
        except OSError:
            return "default"

    kubernetes_runtime_class = Unicode(
        None,
        allow_none=True,
        help="""kubernetes provider: runtimeClassName of the session pods (gvisor, kata,
        ...) for a sandbox stronger than runc; unset: the cluster's default.""",
    ).tag(config=True)

    kubernetes_storage_class = Unicode(
        None,
        allow_none=True,
        help="""kubernetes provider: storageClassName of the workspace PVCs (one per
        session, sized by resource_limits.storage, kept after stop); unset: the default.""",
    ).tag(config=True)

    kubernetes_server_pod_labels = Dict(
        {"app.kubernetes.io/name": "agcluster-jupyter"},
        help="""kubernetes provider: labels of this server's pod; the session pods'
        NetworkPolicy lets only pods with them reach the runner, and egress only to them
        (the gateway).  Under Zero to JupyterHub: {"component": "singleuser-server"}.""",
    ).tag(config=True)

    kubernetes_server_namespace = Unicode(
        None,
        allow_none=True,
        help="""kubernetes provider: the namespace of this server's pod, when the session
        pods run in another one (kubernetes_namespace).""",
    ).tag(config=True)

    fly_app = Unicode(
        help="""fly provider: the Fly app the session machines are created in.  The API
        token comes from $FLY_API_TOKEN (never from a config file).""",
    ).tag(config=True)

    fly_region = Unicode(
        help="""fly provider: the region of the machines and volumes.  Default:
        $FLY_REGION, else ams.""",
    ).tag(config=True)

    @default("fly_region")
    def _default_fly_region(self) -> str:
        return os.environ.get("FLY_REGION") or "ams"

    fly_api_base = Unicode(
        "https://api.machines.dev/v1",
        help="fly provider: the Machines API (inside a Fly machine: http://_api.internal:4280/v1).",
    ).tag(config=True)

    fly_cpu_kind = Enum(
        ["shared", "performance"],
        default_value="shared",
        help="fly provider: the guests' CPU kind.",
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
        names = [f.name for f in dataclasses.fields(ProviderSettings)]
        settings = ProviderSettings(**{name: getattr(self, name) for name in names})
        try:
            return build_provider(settings, self.log)
        except ValueError as exc:  # an agent_user docker cannot resolve
            raise TraitError(str(exc)) from None

    def initialize_settings(self) -> None:
        # the key lives in this process's memory only; runners get per-session tokens.
        # Out of its environment too: the kernels and terminals this server starts copy
        # it, and an agent may be let to run code in a kernel (the kernel tools)
        self._key: str | None = os.environ.pop("ANTHROPIC_API_KEY", None) or None
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
        policy = GatewayPolicy(
            routes=RoutePolicy(self.gateway_allowed_routes),
            allowed_models=frozenset(self.gateway_allowed_models),
            max_body_bytes=self.gateway_max_body_bytes,
            pricing=Pricing(
                {prefix: ModelPrice(**price) for prefix, price in self.model_prices.items()}
            ),
        )
        self.gateway = Gateway(upstream, self._server_key, policy)
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
            default_cost_budget_usd=self.cost_budget_usd or None,
            checkpoint_max_bytes=max(0, self.checkpoint_max_bytes),
            permission_timeout=max(0.0, self.permission_timeout),
            small_model=self.gateway_small_model,
            storage_check_interval=self.storage_check_interval,
            activity_interval=self.activity_interval,
            warm_pool_size=self.warm_pool_size,
            warm_pool_config=(
                self.presets.get(self.warm_pool_config) if self.warm_pool_size > 0 else None
            ),
            gateway_host=self.gateway_host,
            gateway_port=self.gateway_port,
            gateway_url=self.gateway_url,
        )
        provider = self._make_provider()
        if isinstance(provider, LocalProvider):
            settings.workspace_root = local_workspace_root(
                provider,
                settings.workspace_root,
                configured="workspace_root" in self.config.get("AgClusterApp", {}),
                claude_cli=_bundled_cli(),
                log=self.log,
            )
        self.manager = SessionManager(settings, provider, self.gateway, server_key=self._server_key)
        self.manager.activity_sink = self._report_activity
        # notebooks holding agent output are saved unsigned, so they reopen untrusted
        contents_manager = getattr(self.serverapp, "contents_manager", None)
        if contents_manager is not None:
            never_sign_agent_output(contents_manager)
        tree_root = getattr(self.serverapp, "root_dir", None)
        web_app = getattr(self.serverapp, "web_app", None)
        if self.notebook_tools and contents_manager is not None and tree_root:
            # the live settings: jupyter_server_ydoc may register itself after us
            shared = SharedNotebooks(web_app.settings if web_app is not None else {})
            notebook_tools = NotebookTools(contents_manager, shared=shared)
            kernel_manager = getattr(self.serverapp, "kernel_manager", None)
            session_manager = getattr(self.serverapp, "session_manager", None)
            kernels = (
                KernelTools(KernelDoor(kernel_manager, session_manager), notebook_tools)
                if self.kernel_tools and kernel_manager is not None and session_manager
                else None
            )
            self.manager.notebook_access = NotebookAccess(
                notebook_tools,
                Path(tree_root).expanduser(),
                kernels,
                kernel_call_timeout=self.kernel_call_timeout,
            )
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
        ctx = HandlerContext(
            manager=self.manager,
            presets=self.presets,
            agent_image=self.agent_image,
            demo_mode=self.demo_mode,
            max_upload_bytes=self.max_upload_bytes,
            allow_unattended_kernel_access=self.allow_unattended_kernel_access,
        )
        self.handlers.extend(route_table(ctx))

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
