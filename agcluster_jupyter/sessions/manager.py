"""The session manager: launch, look up, stop, purge, reap idle sessions, recover.

Layout on disk (``state_root`` is under the Jupyter data dir by default)::

    {state_root}/sessions/{id}/session.json    the record (0600; never the API key)
    {state_root}/sessions/{id}/events.jsonl    the event log
    {state_root}/sessions/{id}/runner.log      the runner's own output
    {state_root}/sessions/{id}/checkpoints/    the workspace's checkpoints (objects, manifest)
    {state_root}/checkpoint-pool/              every checkpoint object once, hard-linked
                                               from the stores that hold it
    {agent_state_root}/{id}/                   the CLI's config dir, tmp and home
    {socket_root}/{id[:16]}/                   runner.sock and gateway.sock
    {workspace_root}/{id}/                     the workspace (outlives the session)

Size: one class, the lifecycle of every session; each section below (paths, launch,
warm pool, stop, reaper, recovery, limits) uses the same registry and locks, so they stay
together rather than pass the manager's internals between modules.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .._version import __version__
from ..checkpoints import CheckpointHistory
from ..checkpoints.async_local import AsyncLocalCheckpoints
from ..checkpoints.protocol import Checkpoints
from ..checkpoints.remote import RemoteCheckpoints
from ..config import AgentConfig
from ..errors import BadRequest, Conflict, LimitExceeded, NotFound, ServiceUnavailable
from ..events import CheckpointEvent, DoneEvent, ErrorEvent, Event, StatusEvent, now_iso
from ..gateway import Gateway, GatewaySession, Usage, hash_token
from ..providers.base import (
    LABEL_CONFIG,
    LABEL_OWNER,
    LABEL_SESSION,
    LABEL_STATE_ROOT,
    LABEL_VERSION,
    Provider,
    ProviderError,
    ProviderUnavailable,
    RunnerSpec,
    RunnerStatus,
)
from .folders import FolderWorkspace, overlaps
from .fork import copy_conversation, copy_files, export_conversation, import_conversation
from .notebook_access import NotebookAccess
from .ownership import Ownership
from .pool import WarmPool
from .session import Session, SessionRecord
from .state import ACTIVE_STATES
from .storage import StorageGuard

__all__ = ["ManagerSettings", "SessionManager"]

log = logging.getLogger(__name__)


@dataclass
class ManagerSettings:
    state_root: Path
    agent_state_root: Path
    socket_root: Path
    workspace_root: Path
    idle_timeout: float = 3600.0
    cleanup_interval: float = 60.0
    max_sessions: int = 20
    owner: str = ""
    #: on server shutdown: stop every runner (True) or leave them for re-adoption
    stop_on_shutdown: bool = True
    default_token_budget: int | None = None
    default_cost_budget_usd: float | None = None
    #: checkpoint objects kept per session (the oldest pruned past it); 0: no checkpoints
    checkpoint_max_bytes: int = 2 * 1024**3
    #: seconds a permission request waits before it is denied; 0: it waits
    permission_timeout: float = 0.0
    #: the model a session whose config pins one may call besides it (the CLI's side
    #: requests); empty: none
    small_model: str = ""
    #: seconds between reports of agent activity (``activity_sink``)
    activity_interval: float = 10.0
    #: seconds between storage measurements of a busy session (see sessions/storage.py)
    storage_check_interval: float = 3.0
    #: sessions of ``warm_pool_config`` kept started, so launching it is a claim
    warm_pool_size: int = 0
    warm_pool_config: AgentConfig | None = None
    #: remote providers (fly, kubernetes): where the gateway's TCP listener binds, and
    #: the URL under which runners reach it ("" = http://{host}:{port}, for a listener
    #: on a reachable address; in a cluster, the server's Service URL)
    gateway_host: str = "0.0.0.0"
    gateway_port: int = 8766
    gateway_url: str = ""


def allowed_models(config: AgentConfig, small_model: str) -> frozenset[str] | None:
    """The models a session of ``config`` may call through the gateway: its pinned model,
    its sub-agents' and the CLI's small model; None (any) when it pins none.  An entry
    ending in ``*`` is a prefix (a sub-agent's ``sonnet`` is whatever the CLI makes it)."""
    if not config.model:
        return None
    models = {config.model}
    for agent in config.agents.values():
        if agent.model in ("sonnet", "opus", "haiku"):
            models.add(f"claude-{agent.model}-*")  # the CLI resolves the alias
        elif agent.model and agent.model != "inherit":
            models.add(agent.model)
    if small_model:
        models.add(small_model)
    return frozenset(models)


class SessionManager:
    def __init__(
        self,
        settings: ManagerSettings,
        provider: Provider,
        gateway: Gateway,
        *,
        server_key: Callable[[], str | None],
    ) -> None:
        self.settings = settings
        self.provider = provider
        self.gateway = gateway
        self.server_key = server_key
        self.storage = StorageGuard(settings.storage_check_interval)
        self.sessions: dict[str, Session] = {}
        #: this server's registration among those sharing state_root
        self.ownership = Ownership(settings.state_root)
        self._reaper: asyncio.Task[None] | None = None
        #: told when an agent last did something (epoch s), every activity_interval
        self.activity_sink: Callable[[float], None] | None = None
        self._reporter: asyncio.Task[None] | None = None
        self._started: asyncio.Future[None] | None = None
        self._shut_down = False
        #: pooled sessions, started but owned by no launch yet (invisible to the API)
        self._pooled: dict[str, Session] = {}
        #: the ``jupyter`` MCP tools' server side (set by the app; None: not offered)
        self.notebook_access: NotebookAccess | None = None
        self.pool: WarmPool | None = None
        if settings.warm_pool_size > 0 and settings.warm_pool_config is not None:
            self.pool = WarmPool(
                settings.warm_pool_config,
                settings.warm_pool_size,
                start=self._start_pooled,
                discard=self._discard_pooled,
            )

    # -- paths ---------------------------------------------------------------------------

    def _record_dir(self, session_id: str) -> Path:
        return self.settings.state_root / "sessions" / session_id

    def _socket_dir(self, session_id: str) -> Path:
        # unix socket paths must stay under 108 bytes
        return self.settings.socket_root / session_id.replace("-", "")[:16]

    def _agent_state_dir(self, session_id: str) -> Path:
        return self.settings.agent_state_root / session_id

    # -- lifecycle ------------------------------------------------------------------------

    async def ensure_started(self) -> None:
        """Start once (recovery, reaper); every request waits for recovery to finish."""
        if self._started is None:
            self._started = asyncio.get_running_loop().create_future()
            try:
                await self.start()
            except BaseException as exc:
                self._started.set_exception(exc)
                raise
            self._started.set_result(None)
        await asyncio.shield(self._started)

    async def start(self) -> None:
        for folder in (self.settings.state_root, self.settings.socket_root):
            folder.mkdir(parents=True, exist_ok=True)
        if self.provider.remote:
            port = self.gateway.serve_tcp(self.settings.gateway_host, self.settings.gateway_port)
            if not self.settings.gateway_url:
                self.settings.gateway_url = f"http://{self.settings.gateway_host}:{port}"
            log.info(
                "gateway for remote runners on %s:%d, runners call %s",
                self.settings.gateway_host,
                port,
                self.settings.gateway_url,
            )
        async with self.ownership.recovery_lock():
            self.ownership.register()
            self.ownership.forget_dead()
            await self.recover()
        self._reaper = asyncio.create_task(self._reap_forever(), name="agcluster-reaper")
        if self.activity_sink is not None:
            self._reporter = asyncio.create_task(self._report_activity(), name="agcluster-activity")
        if self.pool is not None:
            self.pool.start()

    async def shutdown(self) -> None:
        if self._shut_down:
            return
        self._shut_down = True
        if self.pool is not None:
            await self.pool.close()
            # a pooled session still connecting when the pool closed is in none of the
            # pool's lists: end it here, or its runner (container) outlives the server
            await asyncio.gather(
                *(self._discard_pooled(s) for s in list(self._pooled.values())),
                return_exceptions=True,
            )
        for task in (self._reaper, self._reporter):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        active = [
            s for s in self.sessions.values() if s.state in ACTIVE_STATES or s.state == "stopping"
        ]
        if self.settings.stop_on_shutdown:
            await asyncio.gather(*(self.stop(s.id) for s in active), return_exceptions=True)
        else:
            for session in active:
                await session.detach()
                session.save()
        for session in self.sessions.values():
            session.log.close()
        await self.storage.close()
        await self.gateway.close()
        await self.provider.close()
        # what it leaves running is anyone's to adopt now
        self.ownership.unregister()

    # -- look-ups ---------------------------------------------------------------------------

    def get_session(self, session_id: str) -> Session:
        session = self.sessions.get(session_id)
        if session is None:
            raise NotFound(f"no agent session {session_id!r}; GET agents/sessions lists them")
        return session

    def list_sessions(self) -> list[Session]:
        return sorted(self.sessions.values(), key=lambda s: s.record.created_at)

    def last_activity(self) -> float | None:
        """When an agent last did something (epoch seconds): now while any turn runs
        (a long silent tool call is work too), else the latest session activity; None
        without sessions.  The server reports it as its own activity (JupyterHub's idle
        culler must not cull a server whose agent is busy)."""
        sessions = list(self.sessions.values())
        if any(s.state == "busy" for s in sessions):
            return time.time()
        return max((s.record.last_active for s in sessions), default=None)

    def note_activity(self, session: Session) -> None:
        """A write by the user (chat, upload) keeps the session from being reaped."""
        session.touch()

    # -- launch ---------------------------------------------------------------------------------

    async def launch(
        self,
        config: AgentConfig,
        *,
        api_key: str | None = None,
        name: str = "",
        folder: FolderWorkspace | None = None,
    ) -> Session:
        self._check_launch(api_key)
        if folder is not None:
            self._check_folder(folder)
            return await self._create(config, api_key=api_key, name=name, folder=folder)
        if self.pool is not None and self.pool.matches(config):
            pooled = self.pool.claim()
            if pooled is not None:
                return self._claim(pooled, api_key=api_key, name=name)
        return await self._create(config, api_key=api_key, name=name)

    async def fork(self, parent: Session, *, turn: int | None, name: str = "") -> Session:
        """A new session on a copy of ``parent``'s workspace (before ``turn``, or now) whose
        conversation goes on from a copy of the parent's at that point."""
        history = parent.checkpoints
        if history is None:
            raise Conflict(
                "forks need checkpoints, which are off on this server "
                "(AgClusterApp.checkpoint_max_bytes = 0)"
            )
        if parent.state == "busy" or parent.sending:
            raise Conflict("the session is running a turn; wait for its done, then fork")
        api_key = parent.gateway_session.api_key
        self._check_launch(api_key)
        label = name or f"{parent.record.name} (fork)"
        if isinstance(history, AsyncLocalCheckpoints):
            return await self._fork_here(parent, history.history, turn, api_key, label)
        return await self._fork_remote(parent, history, turn, api_key, label)

    async def _fork_here(
        self,
        parent: Session,
        history: CheckpointHistory,
        turn: int | None,
        api_key: str | None,
        name: str,
    ) -> Session:
        """Both workspaces and both CLI states are folders here: copied before the child's
        runner starts."""
        tree, point = await asyncio.to_thread(
            history.fork_point, turn, parent.record.sdk_session_id
        )
        parent_config = self._agent_state_dir(parent.id) / "claude"

        def prepare(child: Session) -> None:
            copy_files(history.store, tree, Path(child.record.workspace))
            if point is not None:
                cwd = self.provider.workspace_mount or child.record.workspace
                child.record.sdk_session_id = copy_conversation(
                    parent_config,
                    point["conversation"],
                    point.get("message"),
                    self._agent_state_dir(child.id) / "claude",
                    cwd,
                )
            child.record.forked_from = {"session_id": parent.id, "turn": turn}

        return await self._create(parent.record.config, api_key=api_key, name=name, prepare=prepare)

    async def _fork_remote(
        self,
        parent: Session,
        history: Checkpoints,
        turn: int | None,
        api_key: str | None,
        name: str,
    ) -> Session:
        """The workspaces are on two volumes: the parent's runner exports the snapshot and
        a copy of the conversation, the child's runner (started first) takes them in."""
        if turn is None:
            conversation = parent.record.sdk_session_id
            point = {"conversation": conversation} if conversation else None
        else:
            point = await history.rewind_point(turn)
        with tempfile.TemporaryFile(prefix="agcluster-fork-") as spool:
            await history.export(turn, spool)
            transcript = None
            if point is not None:
                transcript = await export_conversation(
                    parent, point["conversation"], point.get("message")
                )

            def prepare(child: Session) -> None:
                child.record.forked_from = {"session_id": parent.id, "turn": turn}

            child = await self._create(
                parent.record.config, api_key=api_key, name=name, prepare=prepare
            )
            try:
                assert child.checkpoints is not None  # the parent's server keeps them
                spool.seek(0)
                await child.checkpoints.seed(spool)
                if transcript is not None:
                    await import_conversation(child, *transcript)
                    await child.rewind_conversation(transcript[0], None)
            except BaseException:
                with contextlib.suppress(Exception):
                    await self.stop(child.id, purge=True, reason="the fork could not be prepared")
                raise
        return child

    def _check_folder(self, folder: FolderWorkspace) -> None:
        """A folder workspace this provider can give, that no live session works in."""
        if self.provider.remote:
            raise BadRequest(
                f"{self.provider.name} sessions work on a volume of their own, not in a "
                "folder of this server's tree; launch without workspace (or use docker)",
                field="workspace",
            )
        if folder.readonly and not self.provider.isolated:
            raise BadRequest(
                "workspace_readonly needs an isolating provider (docker): the local "
                "provider runs the agent as a user of this machine, nothing mounts it "
                "read-only",
                field="workspace_readonly",
            )
        if not folder.shared:
            self._check_overlap(folder)
        self.provider.check_folder(folder.path)

    def _check_overlap(self, folder: FolderWorkspace) -> None:
        for other in self.sessions.values():
            if other.record.folder is None or other.state not in ACTIVE_STATES:
                continue
            if overlaps(folder.path, Path(other.record.workspace)):
                shown = other.record.folder or "the Jupyter root"
                raise Conflict(
                    f"session {other.record.name!r} ({other.id}) works in {shown!r}, which "
                    f"overlaps {folder.relpath or 'the Jupyter root'!r}; stop it, or launch "
                    "with share_workspace: true to let both work there"
                )

    def _check_launch(self, api_key: str | None) -> None:
        if not (api_key or self.server_key()):
            raise BadRequest(
                "no Anthropic API key: pass api_key in the launch body, or start Jupyter "
                "with ANTHROPIC_API_KEY set in its environment",
                field="api_key",
            )
        # a launch in progress is a "starting" session already (registered before its
        # first await), so it counts once
        active = sum(1 for s in self.sessions.values() if s.state in ACTIVE_STATES)
        if active >= self.settings.max_sessions:
            raise LimitExceeded(
                f"{active} sessions are running, the limit is {self.settings.max_sessions}; "
                "stop one (DELETE agents/sessions/{id}) or raise AgClusterApp.max_sessions"
            )

    async def _create(
        self,
        config: AgentConfig,
        *,
        api_key: str | None,
        name: str,
        pooled: bool = False,
        prepare: Callable[[Session], None] | None = None,
        folder: FolderWorkspace | None = None,
    ) -> Session:
        session_id = str(uuid.uuid4())
        workspace = folder.path if folder else self.settings.workspace_root / session_id
        token = secrets.token_urlsafe(32)
        record = SessionRecord(
            session_id=session_id,
            name=name or config.name,
            config_id=config.id,
            config=config,
            owner=self.settings.owner,
            workspace=str(workspace),
            token_hash=hash_token(token),
            pooled=pooled,
            server_id=self.ownership.server_id,
            folder=folder.relpath if folder else None,
            workspace_readonly=folder.readonly if folder else False,
        )
        session = self._new_session(record, api_key)
        if folder is not None:  # the storage limit counts what the agent adds to it
            record.workspace_baseline_bytes = await session.workspace.usage()
        elif not self.provider.remote:  # a remote workspace is the runner's volume
            workspace.mkdir(parents=True, exist_ok=True)
        (self._pooled if pooled else self.sessions)[session_id] = session
        if prepare is not None:  # a fork's files and conversation, before its runner
            try:
                await asyncio.to_thread(prepare, session)
            except (OSError, ValueError) as exc:
                del self.sessions[session_id]
                await asyncio.to_thread(self._purge_files, session)
                raise Conflict(f"the fork could not be prepared: {exc}") from None
        session.save()
        session.log.append(StatusEvent(state="starting", detail="launching the agent runner"))
        try:
            await self._start_runner(session, token)
        except BaseException:
            if pooled:
                self._pooled.pop(session_id, None)
            raise
        return session

    # -- warm pool --------------------------------------------------------------------------

    async def _start_pooled(self, config: AgentConfig) -> Session:
        return await self._create(config, api_key=None, name="", pooled=True)

    async def _discard_pooled(self, session: Session) -> None:
        self._pooled.pop(session.id, None)
        self.sessions[session.id] = session  # stop() looks sessions up by id
        await self.stop(session.id, purge=True, reason="warm pool closed")

    def _claim(self, session: Session, *, api_key: str | None, name: str) -> Session:
        """Hand a pooled session to a launch: it gets the launch's key and name."""
        self._pooled.pop(session.id, None)
        record = session.record
        record.pooled = False
        record.name = name or record.config.name
        record.created_at = now_iso()
        session.gateway_session.api_key = api_key
        session.touch()
        self.sessions[session.id] = session
        session.save()
        return session

    def _new_session(self, record: SessionRecord, api_key: str | None) -> Session:
        config = record.config
        gateway_session = GatewaySession(
            session_id=record.session_id,
            token_hash=record.token_hash,
            api_key=api_key,
            token_budget=config.token_budget or self.settings.default_token_budget,
            cost_budget_usd=config.cost_budget_usd or self.settings.default_cost_budget_usd,
            allowed_models=allowed_models(config, self.settings.small_model),
            usage=Usage(record.input_tokens, record.output_tokens, record.metered_cost_usd),
        )
        session = Session(
            record,
            provider=self.provider,
            record_dir=self._record_dir(record.session_id),
            gateway_session=gateway_session,
        )
        gateway_session.on_usage = lambda _usage: session.save()
        session.agent_state_dir = self._agent_state_dir(record.session_id)
        session.permission_timeout = self.settings.permission_timeout

        def refused(message: str) -> None:  # the user sees that their agent tried
            session.log.append(
                ErrorEvent(message=f"the gateway refused a call: {message}", code="gateway_refused")
            )

        gateway_session.on_refused = refused
        if self.settings.checkpoint_max_bytes > 0:
            if self.provider.remote:  # the runner keeps them on the session's volume
                session.checkpoints = RemoteCheckpoints(session.runner_channel)
            else:
                session.checkpoints = AsyncLocalCheckpoints(
                    CheckpointHistory(
                        self._record_dir(record.session_id) / "checkpoints",
                        Path(record.workspace),
                        self.settings.checkpoint_max_bytes,
                        # one copy of what several sessions hold (forks, shared data)
                        pool=self.settings.state_root / "checkpoint-pool",
                    )
                )
        session.before_turn = self._before_turn
        session.before_done = self._before_done
        session.tool_handler = self._tool_call
        return session

    async def _tool_call(self, session: Session, tool: str, args: Any) -> dict[str, Any]:
        if self.notebook_access is None:
            return {"error": "error: this Jupyter server offers no notebook tools"}
        return await self.notebook_access(session, tool, args)

    async def _start_runner(self, session: Session, token: str) -> None:
        """Serve the session's gateway and start its runner (resuming any conversation)."""
        socket_dir = self._socket_dir(session.id)
        gateway = self._serve_gateway(session)
        spec = RunnerSpec(
            session_id=session.id,
            config=session.record.config,
            workspace=Path(session.record.workspace),
            state_dir=self._agent_state_dir(session.id),
            socket_dir=socket_dir,
            session_token=token,
            gateway=gateway,
            owner=session.record.owner,
            resume=session.record.sdk_session_id,
            # a fresh one each start: the runner is given only its digest
            control_token=secrets.token_urlsafe(32),
            # remote workspaces: the runner keeps the checkpoints on the session's volume
            checkpoint_max_bytes=self.settings.checkpoint_max_bytes,
            folder_workspace=session.record.folder is not None,
            workspace_readonly=session.record.workspace_readonly,
            jupyter_tools=self.notebook_access is not None,
            kernel_tools=self.notebook_access is not None
            and self.notebook_access.kernels is not None
            and session.record.config.kernel_access != "deny",
            labels={
                LABEL_SESSION: session.id,
                LABEL_CONFIG: session.record.config_id,
                LABEL_OWNER: session.record.owner,
                LABEL_VERSION: __version__,
                LABEL_STATE_ROOT: str(self.settings.state_root),
            },
        )
        try:
            handle = await self.provider.create(spec)
        except ProviderUnavailable as exc:
            self.gateway.stop_serving(session.id)
            self._check_not_abandoned(session)
            session.set_state("failed", str(exc))
            raise ServiceUnavailable(str(exc)) from None
        except (ProviderError, OSError) as exc:
            # OSError: the runner process could not even be started (E2BIG, EAGAIN, ENOMEM)
            self.gateway.stop_serving(session.id)
            self._check_not_abandoned(session)
            session.set_state("failed", str(exc))
            raise ServiceUnavailable(f"the agent could not start: {exc}") from None
        if self._abandoned(session):
            # stopped (or purged) while its runner started: that runner is nobody's now
            try:
                await asyncio.wait_for(self.provider.stop(handle), 60.0)
            except Exception:
                log.exception("session %s: stopping a runner started too late failed", session.id)
            self.gateway.stop_serving(session.id)
            self._check_not_abandoned(session)
        session.control_token = handle.token
        # on disk only where the agent cannot read it (the local provider as its uid: not)
        session.record.runner_token = handle.token if self.provider.persists_control_token else ""
        session.attach(handle)
        session.touch()
        session.set_state("ready", "the agent is ready")

    def _abandoned(self, session: Session) -> bool:
        """Stopped or purged while its runner was starting."""
        known = self.sessions.get(session.id) is session or self._pooled.get(session.id) is session
        return session.state in {"stopping", "stopped"} or not known

    def _check_not_abandoned(self, session: Session) -> None:
        if self._abandoned(session):
            raise Conflict("the session was stopped while its agent was starting")

    def _serve_gateway(self, session: Session) -> str:
        """Let the session's runner reach the gateway; the address it calls."""
        if self.provider.remote:
            self.gateway.register_remote(session.gateway_session)
            return self.settings.gateway_url
        socket_dir = self._socket_dir(session.id)
        socket_dir.mkdir(parents=True, exist_ok=True)
        socket_dir.chmod(0o755)
        gateway_socket = socket_dir / "gateway.sock"
        self.gateway.serve_unix(session.gateway_session, gateway_socket)
        return f"unix:{gateway_socket}"

    async def ensure_running(self, session: Session) -> None:
        """Start a stopped or failed session again; its conversation resumes."""
        async with session.lock:
            if session.state in {"ready", "idle", "busy"}:
                return
            if session.state not in {"stopped", "failed"}:
                raise ServiceUnavailable(f"the session is {session.state}; try again shortly")
            if not (session.gateway_session.api_key or self.server_key()):
                raise BadRequest(
                    "this session has no API key any more (a key given at launch is kept "
                    "only in memory); start Jupyter with ANTHROPIC_API_KEY or launch anew",
                    field="api_key",
                )
            await session.detach()
            token = secrets.token_urlsafe(32)
            session.record.token_hash = hash_token(token)
            session.gateway_session.token_hash = session.record.token_hash
            session.set_state("starting", "restarting the agent; the conversation resumes")
            await self._start_runner(session, token)

    # -- stop / purge ---------------------------------------------------------------------

    async def stop(self, session_id: str, *, purge: bool = False, reason: str = "") -> None:
        session = self.get_session(session_id)
        async with session.lock:
            handle = session.handle
            if session.state in ACTIVE_STATES or session.state == "failed":
                was_busy = session.state == "busy"
                session.set_state("stopping", reason or "stopping the agent")
                await session.detach()
                if handle is not None:
                    try:
                        await asyncio.wait_for(self.provider.stop(handle), 60.0)
                    except Exception:
                        log.exception("session %s: provider stop failed", session.id)
                self.gateway.stop_serving(session.id)
                if self.notebook_access is not None:  # no longer among collaborators
                    self.notebook_access.left(session)
                if was_busy:  # every turn ends with done; clients wait for it
                    session.log.append(DoneEvent())
                session.set_state("stopped", reason or "stopped; the workspace is kept")
            if purge:
                try:
                    await asyncio.wait_for(self.provider.purge_workspace(session.id, handle), 120.0)
                except (ProviderError, asyncio.TimeoutError) as exc:
                    raise ServiceUnavailable(
                        f"the session is stopped, but its workspace volume could not be "
                        f"deleted ({exc or 'timed out'}); nothing was removed, try again"
                    ) from None
                session.log.close()
                del self.sessions[session.id]
                self.storage.forget(session.id)
                await asyncio.to_thread(self._purge_files, session)

    def _purge_files(self, session: Session) -> None:
        if isinstance(session.checkpoints, AsyncLocalCheckpoints):
            # its pool links first: what only it held leaves the pool with it
            session.checkpoints.history.store.destroy()
        # a folder workspace is the user's: never deleted, only the session's own state
        own = [] if session.record.folder is not None else [Path(session.record.workspace)]
        for folder in (
            *own,
            self._record_dir(session.id),
            self._agent_state_dir(session.id),
            self._socket_dir(session.id),
        ):
            shutil.rmtree(folder, ignore_errors=True)

    # -- idle reaper ------------------------------------------------------------------------

    async def _report_activity(self) -> None:
        while True:
            last = self.last_activity()
            if last is not None and self.activity_sink is not None:
                try:
                    self.activity_sink(last)
                except Exception:
                    log.exception("reporting agent activity failed")
            await asyncio.sleep(self.settings.activity_interval)

    async def _reap_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.cleanup_interval)
            self.ownership.refresh()
            try:
                await self.reap_idle()
            except Exception:
                log.exception("idle reaper failed")

    async def reap_idle(self, now: float | None = None) -> list[str]:
        """Stop sessions idle longer than ``idle_timeout``; a running turn is activity."""
        now = time.time() if now is None else now
        reaped = []
        for session in list(self.sessions.values()):
            if session.state == "busy":
                session.touch()  # a turn at work is activity, however long it runs
                continue
            if session.state not in {"ready", "idle"}:
                continue
            if now - session.record.last_active > self.settings.idle_timeout:
                minutes = self.settings.idle_timeout / 60
                await self.stop(session.id, reason=f"stopped after {minutes:g} min idle")
                reaped.append(session.id)
        return reaped

    # -- recovery -------------------------------------------------------------------------

    async def recover(self) -> None:
        """Load every record; re-adopt runners still alive; mark the rest stopped."""
        sessions_dir = self.settings.state_root / "sessions"
        if not sessions_dir.is_dir():
            return
        for record_dir in sorted(sessions_dir.iterdir()):
            path = record_dir / "session.json"
            if not path.is_file():
                continue
            try:
                record = SessionRecord.model_validate_json(path.read_text(encoding="utf-8"))
            except (ValidationError, OSError) as exc:
                log.warning("skipping unreadable session record %s: %s", path, exc)
                continue
            if self.ownership.owned_elsewhere(record.server_id):
                continue  # another live server's: not ours to list, reap, stop or adopt
            # ours, or its server is gone: this server owns it from now on
            record.server_id = self.ownership.server_id
            session = self._new_session(record, None)
            session.save()
            session.log.load()
            self.sessions[record.session_id] = session
            if record.pooled:
                # nobody ever used it: end its runner (if alive) and forget it
                await self._discard_pooled(session)
                continue
            await self._readopt(session)
        await self._remove_orphans()

    async def _readopt(self, session: Session) -> None:
        handle = session.handle
        if session.state not in ACTIVE_STATES and session.state != "stopping":
            return
        alive = False
        if handle is not None:
            try:
                status = await asyncio.wait_for(self.provider.status(handle), 15.0)
                alive = status is RunnerStatus.RUNNING
            except Exception:
                log.exception("session %s: status check failed during recovery", session.id)
        if alive and handle is not None and not handle.token:
            # its control token was never written down (the agent could have read it):
            # this server cannot drive it, so it ends it; the next message resumes
            log.info(
                "session %s: runner %s has no control token here; stopping it",
                session.id,
                handle.agent_id,
            )
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.provider.stop(handle), 60.0)
            alive = False
        if alive and handle is not None:
            self._serve_gateway(session)
            session.attach(handle)
            if session.state == "starting":
                session.set_state("ready", "re-adopted after a server restart")
            log.info("session %s: re-adopted %s", session.id, handle.agent_id)
            return
        was_busy = session.state == "busy"
        if was_busy:
            session.log.append(
                ErrorEvent(
                    message="the server restarted and the runner is gone", code="runner_lost"
                )
            )
            session.log.append(DoneEvent())
        session.record.state = "stopped"
        session.record.state_detail = "the runner did not survive a server restart; chat resumes it"
        session.save()
        session.log.append(StatusEvent(state="stopped", detail=session.record.state_detail))

    async def _remove_orphans(self) -> None:
        try:
            runners = await asyncio.wait_for(
                self.provider.list_runners(
                    {
                        LABEL_OWNER: self.settings.owner,
                        # another server's runners (another state_root) are not ours
                        LABEL_STATE_ROOT: str(self.settings.state_root),
                    }
                ),
                30.0,
            )
        except Exception:
            log.exception("could not list runners to remove orphans")
            return
        for handle in runners:
            known = self.sessions.get(handle.session_id)
            if known is None and self._owned_elsewhere(handle.session_id):
                continue  # another live server's session (the same state_root)
            if known is None or known.state not in ACTIVE_STATES:
                log.info("removing orphan runner %s", handle.agent_id)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self.provider.stop(handle), 60.0)

    def _owned_elsewhere(self, session_id: str) -> bool:
        path = self._record_dir(session_id) / "session.json"
        try:
            record = SessionRecord.model_validate_json(path.read_text(encoding="utf-8"))
        except (ValidationError, OSError):
            return False
        return self.ownership.owned_elsewhere(record.server_id)

    # -- limits and faults ---------------------------------------------------------------

    async def check_storage(self, session: Session, extra_bytes: int, what: str = "") -> None:
        """413 when ``extra_bytes`` more (an upload) would take the session over its
        ``resource_limits.storage``."""
        await self.storage.check(session, extra_bytes, what=what)

    async def _before_turn(self, session: Session, message: str) -> None:
        """The storage limit (may refuse the turn), then checkpoint ``n``: the workspace
        just before turn ``n``."""
        await self.storage.before_turn(session)
        if session.checkpoints is not None:
            turn = session.record.turns + 1
            try:
                await session.checkpoints.begin_turn(turn, message)
            except Exception:  # a turn must not fail for its checkpoint: said in the log
                log.exception("session %s: no checkpoint of turn %d", session.id, turn)

    async def _before_done(self, session: Session) -> list[Event]:
        """Events to log before a turn's ``done``: what the provider saw happen to the
        runner (a tool killed for memory), the storage limit, and what the turn changed
        in the workspace (``checkpoint``)."""
        errors: list[Event] = []
        handle = session.handle
        if handle is not None:
            try:
                faults = await asyncio.wait_for(
                    self.provider.faults(handle, session.turn_started), 5.0
                )
                errors += [ErrorEvent(code=f.code, message=f.message) for f in faults]
            except Exception:  # noqa: BLE001 - best effort; the turn must end regardless
                log.warning("session %s: could not ask the provider for faults", session.id)
        try:
            # a huge workspace must not hold up the done: the next message re-checks
            storage = await asyncio.wait_for(self.storage.turn_error(session), 2.0)
        except Exception:  # noqa: BLE001
            log.warning("session %s: storage check after the turn failed", session.id)
            storage = None
        if storage is not None:
            errors.append(storage)
        if session.checkpoints is not None:
            turn = session.record.turns + 1
            result = session.last_result
            anchor = (
                {"conversation": result.sdk_session_id, "message": result.message_uuid}
                if result is not None and result.sdk_session_id and result.message_uuid
                else None
            )
            try:
                summary = await session.checkpoints.end_turn(turn, anchor)
            except Exception:
                log.exception("session %s: the checkpoint of turn %d did not end", session.id, turn)
                summary = None
            if summary is not None:
                errors.append(CheckpointEvent(turn=turn, **summary))
        return errors

    # -- health -------------------------------------------------------------------------------

    async def provider_health(self) -> dict[str, Any]:
        try:
            health = await asyncio.wait_for(self.provider.health(), 10.0)
        except Exception as exc:  # noqa: BLE001 - health must always answer
            return {"provider_ok": False, "isolated": self.provider.isolated, "detail": str(exc)}
        return {"provider_ok": health.ok, "isolated": health.isolated, "detail": health.detail}
