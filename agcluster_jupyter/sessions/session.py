"""One agent session: its record, event log, runner handle and the relay between them.

The relay is the only path from a runner into the session log: it follows the runner's
``/events`` stream from the last ``rseq`` it appended, stamps each event into the log,
and drives the state machine from ``status`` and ``done`` events.  It reconnects after a
dropped stream and turns a vanished runner into an ``error`` + ``done`` and ``failed``.

Size: the record, the relay and the state machine share one lock and one lifetime;
splitting them would hand the lock around.  Permissions and storage live apart
(``storage.py``, ``ownership.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import httpx
from pydantic import BaseModel, Field, ValidationError

from ..checkpoints.protocol import Checkpoints
from ..config import AgentConfig
from ..errors import BadRequest, Conflict, NotFound, ServiceUnavailable
from ..events import (
    DoneEvent,
    ErrorEvent,
    Event,
    PermissionAnswerEvent,
    PermissionRequestEvent,
    ResultEvent,
    SessionState,
    StatusEvent,
    ToolResultEvent,
    now_iso,
    parse_event,
)
from ..gateway import GatewaySession
from ..notebooks.journal import NotebookJournal
from ..providers.base import Provider, RunnerHandle, RunnerStatus
from ..workspace import LocalWorkspace
from ..workspace.async_local import AsyncLocalWorkspace
from ..workspace.protocol import Workspace
from ..workspace.remote import RemoteWorkspace
from .eventlog import EventLog
from .state import ACTIVE_STATES, can_transition

__all__ = ["Session", "SessionRecord"]

#: events only this server logs: a runner line claiming one is dropped (the runner shares
#: its container with the agent, so it could be made to forge the audit)
SERVER_LOGGED_EVENTS = frozenset({"permission_answer", "notebook_edit", "kernel_call"})

log = logging.getLogger(__name__)

#: how much of the first message a session keeps to be told apart by
FIRST_PROMPT_CHARS = 200


class SessionRecord(BaseModel):
    """What survives a server restart (``session.json``, mode 0600; never the API key)."""

    session_id: str
    name: str
    config_id: str
    config: AgentConfig
    owner: str = ""
    created_at: str = Field(default_factory=now_iso)
    last_active: float = Field(default_factory=time.time)
    state: SessionState = "starting"
    state_detail: str = ""
    workspace: str
    handle: dict[str, Any] | None = None
    token_hash: str
    #: the runner's control token (every request to it carries it); empty when the
    #: provider keeps it out of the record (``Provider.persists_control_token``)
    runner_token: str = ""
    sdk_session_id: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    turns: int = 0
    #: what the model reported the session's turns cost, summed (USD)
    cost_usd: float = 0.0
    #: the Jupyter server that owns the session (``ownership.py``); "" in old records
    server_id: str = ""
    #: the notebook (a path of the Jupyter tree) whose %%agent cell started the session
    notebook: str = ""
    #: the first message the session was sent (shown to tell sessions apart)
    first_prompt: str = ""
    #: the SDK's running cost total at the conversation's last result (USD)
    cost_total_seen: float = 0.0
    #: what the gateway's meter priced every model call of the session at (USD)
    metered_cost_usd: float = 0.0
    #: started ahead of time by the warm pool and not claimed by a launch yet
    pooled: bool = False
    #: a fork's parent: ``{session_id, turn}`` (turn None: forked from the parent's now)
    forked_from: dict[str, Any] | None = None
    #: a folder workspace (``folders.py``): the folder as the file browser shows it
    #: (``workspace`` is then its real path); None: the session's own folder
    folder: str | None = None
    workspace_readonly: bool = False
    #: what the folder held at launch: the storage limit counts what the agent adds
    workspace_baseline_bytes: int = 0
    #: notebooks of the Jupyter tree the launch granted the ``jupyter`` tools
    notebooks: list[str] = Field(default_factory=list)
    #: notebook path -> the kernel process the user granted for it (kernels/door.py)
    kernel_grants: dict[str, dict[str, Any]] = Field(default_factory=dict)


class Session:
    def __init__(
        self,
        record: SessionRecord,
        *,
        provider: Provider,
        record_dir: Path,
        gateway_session: GatewaySession,
    ) -> None:
        self.record = record
        self.provider = provider
        #: the runner's control token, in memory (the record may not keep it)
        self.control_token = ""
        #: the CLI's state folder on this host (it counts against the storage limit)
        self.agent_state_dir: Path | None = None
        #: seconds a permission request may wait before it is denied; 0: it waits
        self.permission_timeout = 0.0
        self._permission_timers: dict[str, asyncio.TimerHandle] = {}
        #: permission requests of this server's own (the kernel tools), by request id
        self._server_requests: dict[str, asyncio.Future[tuple[bool, str, str]]] = {}
        self._background: set[asyncio.Future[None]] = set()
        self.record_dir = record_dir
        self.log = EventLog(record.session_id, record_dir / "events.jsonl")
        self.gateway_session = gateway_session
        self.lock = asyncio.Lock()
        self._relay_task: asyncio.Task[None] | None = None
        self._stopping = False
        #: a message is on its way to the runner (held while the runner starts)
        self._sending = False
        #: a checkpoint restore is writing the workspace: no turn may start meanwhile
        self.restoring = False
        #: when the current (or last) turn started, epoch seconds
        self.turn_started = 0.0
        #: set by the manager: may refuse a turn (storage limit) before it starts, and
        #: takes its checkpoint; called with the message
        self.before_turn: Callable[[Session, str], Awaitable[None]] | None = None
        #: set by the manager: events to log before a turn's ``done`` (OOM kills,
        #: storage, the turn's ``checkpoint``)
        self.before_done: Callable[[Session], Awaitable[list[Event]]] | None = None
        #: the workspace's per-turn checkpoints (None: off on this server)
        self.checkpoints: Checkpoints | None = None
        #: the running (or last) turn's result: where its conversation can be resumed
        self.last_result: ResultEvent | None = None
        #: set by the manager: runs one ``jupyter`` tool call (tool, args) and returns the
        #: runner's answer, ``{result}`` or ``{error}``
        self.tool_handler: Callable[[Session, str, Any], Awaitable[dict[str, Any]]] | None = None

    # -- identity and record ------------------------------------------------------------

    @property
    def id(self) -> str:
        return self.record.session_id

    @functools.cached_property
    def notebook_journal(self) -> NotebookJournal:
        """Earlier contents of the notebooks outside the workspace the agent edited."""
        return NotebookJournal(self.record_dir / "notebook-journal.json")

    @property
    def state(self) -> SessionState:
        return self.record.state

    @property
    def remote(self) -> bool:
        """The workspace lives with the runner (fly, kubernetes), not on this host."""
        return self.provider.remote

    @property
    def workspace(self) -> Workspace:
        """The session's files: through the runner (remote), else the folder here; the
        agent state folder counts against the storage limit too."""
        if self.remote:
            return RemoteWorkspace(self.runner_channel, describe=f"{self.provider.name}:{self.id}")
        root = Path(self.record.workspace)
        mount = self.provider.workspace_mount
        if mount is None:
            local = LocalWorkspace(root, aliases=(), display_root=str(root))
        else:
            local = LocalWorkspace(root, aliases=(mount,), display_root=mount)
        extra = (self.agent_state_dir,) if self.agent_state_dir is not None else ()
        return AsyncLocalWorkspace(local, usage_paths=extra)

    def runner_channel(self, timeout: float) -> httpx.AsyncClient:
        """The runner channel for the workspace's files and checkpoints (a remote one's
        live with its runner: a 409 saying so while it is not running)."""
        handle = self.handle
        if self.state == "starting":
            raise Conflict("the session's agent is starting; its files are here in a moment")
        if handle is None or not handle.endpoint or self.state not in ACTIVE_STATES:
            raise Conflict(
                f"the session's agent is {self.state}, and its workspace lives with it on "
                f"the {self.provider.name} volume (kept); send the session a message to "
                "start it again, then its files are here"
            )
        return self.provider.channel(handle, timeout=timeout)

    @property
    def handle(self) -> RunnerHandle | None:
        if self.record.handle is None:
            return None
        token = self.control_token or self.record.runner_token
        return RunnerHandle.from_json(self.record.handle, token=token)

    def save(self) -> None:
        """Persist the record atomically (a torn write never replaces a good record)."""
        self.record.input_tokens = self.gateway_session.usage.input_tokens
        self.record.output_tokens = self.gateway_session.usage.output_tokens
        self.record.metered_cost_usd = self.gateway_session.usage.cost_usd
        self.record_dir.mkdir(parents=True, exist_ok=True)
        path = self.record_dir / "session.json"
        tmp = path.with_suffix(".json.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(self.record.model_dump_json(indent=1))
        os.replace(tmp, path)

    def touch(self) -> None:
        self.record.last_active = time.time()

    def usage(self) -> dict[str, int]:
        return self.gateway_session.usage.to_json()

    def details(
        self, resources: dict[str, Any] | None = None, contents_root: Path | None = None
    ) -> dict[str, Any]:
        """The session as the API shows it.  ``contents_path`` is the workspace as a path
        of the Jupyter tree (relative to ``contents_root``, the server's root_dir), so a
        front end can open its files in JupyterLab; None when it lies outside the tree."""
        rec = self.record
        handle = self.handle
        return {
            "session_id": rec.session_id,
            "agent_id": handle.agent_id if handle else None,
            "name": rec.name,
            "state": rec.state,
            "status": rec.state,
            "state_detail": rec.state_detail,
            "config_id": rec.config_id,
            "owner": rec.owner,
            "created_at": rec.created_at,
            "last_active": _iso(rec.last_active),
            "usage": self.usage(),
            "token_budget": self.gateway_session.token_budget,
            "cost_budget_usd": self.gateway_session.cost_budget_usd,
            "metered_cost_usd": round(self.gateway_session.usage.cost_usd, 6),
            "turns": rec.turns,
            "checkpoints": self.checkpoints.known_count if self.checkpoints is not None else 0,
            "forked_from": rec.forked_from,
            "folder": rec.folder,
            "workspace_readonly": rec.workspace_readonly,
            # a remote workspace is on the runner's volume: where the agent sees it
            "workspace": self.provider.workspace_mount if self.remote else rec.workspace,
            "contents_path": (
                None if self.remote else _contents_path(Path(rec.workspace), contents_root)
            ),
            "cost_usd": round(rec.cost_usd, 6),
            "notebook": rec.notebook,
            "first_prompt": rec.first_prompt,
            "sdk_session_id": rec.sdk_session_id,
            "provider": handle.provider if handle else self.provider.name,
            "isolated": self.provider.isolated,
            "resource_limits": rec.config.resource_limits.model_dump(),
            "last_seq": self.log.last_seq,
            "resources": resources or {},
        }

    # -- state ----------------------------------------------------------------------------

    def set_state(self, new: SessionState, detail: str = "") -> None:
        old = self.record.state
        if old == new:
            return
        if not can_transition(old, new):
            log.debug("session %s: ignoring %s -> %s", self.id, old, new)
            return
        self.record.state = new
        self.record.state_detail = detail
        self.save()
        self.log.append(StatusEvent(state=new, detail=detail))

    # -- runner ------------------------------------------------------------------------------

    def attach(self, handle: RunnerHandle) -> None:
        """Remember the runner and start relaying its events into the log."""
        self.record.handle = handle.to_json()
        self._stopping = False
        self.log.reopen()
        self.log.use_runner(handle.agent_id)
        self.save()
        self._relay_task = asyncio.create_task(self._relay(), name=f"relay-{self.id}")

    async def detach(self) -> None:
        """Stop relaying (the runner itself is the provider's to stop)."""
        self._stopping = True
        self._deny_server_requests("the session stopped")
        task, self._relay_task = self._relay_task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _relay(self) -> None:
        backoff = 0.05
        while not self._stopping:
            handle = self.handle
            if handle is None:
                return
            try:
                async with self.provider.channel(handle, timeout=30.0) as client:
                    async with client.stream(
                        "GET",
                        "/events",
                        params={"after": self.log.last_rseq},
                        timeout=httpx.Timeout(10.0, read=None),
                    ) as response:
                        response.raise_for_status()
                        backoff = 0.05
                        async for line in response.aiter_lines():
                            if line.strip():
                                await self._ingest(line)
            except asyncio.CancelledError:
                raise
            except (httpx.HTTPError, OSError) as exc:
                log.debug("session %s: runner stream dropped: %s", self.id, exc)
            if self._stopping:
                return
            # is the runner gone, or did the stream merely drop?
            status = await self._runner_status(handle)
            if status is not RunnerStatus.RUNNING:
                await self._runner_lost(status)
                return
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 2.0)

    async def _runner_status(self, handle: RunnerHandle) -> RunnerStatus:
        try:
            return await asyncio.wait_for(self.provider.status(handle), 15.0)
        except Exception:
            log.exception("session %s: provider status failed", self.id)
            return RunnerStatus.RUNNING

    async def _runner_lost(self, status: RunnerStatus) -> None:
        handle = self.handle
        reason = None
        if handle is not None:
            try:
                reason = await asyncio.wait_for(self.provider.exit_reason(handle), 15.0)
            except Exception:  # noqa: BLE001 - the generic message will do
                log.warning("session %s: no exit reason from the provider", self.id)
        detail = (reason or f"the agent runner {status.value} unexpectedly") + (
            "; the workspace is intact and the next message restarts the agent"
        )
        code = "out_of_memory" if reason and "out of memory" in reason else "runner_lost"
        if self.state == "busy":
            self.log.append(ErrorEvent(message=detail, code=code))
            self.log.append(DoneEvent())
        self.set_state("failed", detail)
        if handle is not None and status is RunnerStatus.EXITED:
            # a dead container is removed now (its reason is logged above), so nothing is
            # left behind even if this session is never used again
            try:
                await asyncio.wait_for(self.provider.stop(handle), 60.0)
            except Exception:  # noqa: BLE001 - recovery's orphan removal retries
                log.warning("session %s: could not remove the dead runner", self.id)

    async def _ingest(self, line: str) -> None:
        try:
            data = json.loads(line)
            rseq = int(data["rseq"])
            if "tool_call" in data:
                if rseq > self.log.last_rseq:  # not one a reconnect repeats
                    self.log.skip(rseq)
                    self._spawn(self._tool_call(data["tool_call"]))
                return
            if "event" not in data:
                self._marker(data, rseq)
                return
            event = parse_event(data["event"])
        except (ValueError, KeyError, TypeError, ValidationError):
            log.warning("session %s: unreadable runner line dropped: %.200s", self.id, line)
            return
        if rseq <= self.log.last_rseq:
            return  # already have it (a reconnect overlapped)
        if event.type in SERVER_LOGGED_EVENTS:
            # who answered, what was edited, what ran in a kernel: this server's word only
            log.warning(
                "session %s: a runner line claiming a %s event dropped", self.id, event.type
            )
            self.log.skip(rseq)
            return
        self.touch()
        if isinstance(event, StatusEvent):
            if event.state in {"busy", "idle"}:
                if self.state in ACTIVE_STATES:
                    self.record.state = event.state
                self.log.append(event, rseq)
            elif event.state == "failed":
                self.log.skip(rseq)
                self.set_state("failed", event.detail or "the agent runner failed")
            else:
                # the runner's own ready/starting: the session's lifecycle already says so
                self.log.skip(rseq)
            return
        if isinstance(event, ResultEvent):
            self.last_result = event
            event.session_usage = self.usage()
            event.cost_usd = self._turn_cost(event)
            if event.cost_usd:
                self.record.cost_usd += event.cost_usd
            if event.sdk_session_id:
                self.record.sdk_session_id = event.sdk_session_id
        if isinstance(event, DoneEvent) and self.before_done is not None:
            for error in await self.before_done(self):
                self.log.append(error)
        self.log.append(event, rseq)
        self._track_permission(event)
        if isinstance(event, DoneEvent):
            self.record.turns += 1
            if self.state == "busy":
                self.record.state = "idle"
            self.save()

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _tool_call(self, call: Any) -> None:
        """Run a ``jupyter`` tool call the runner forwarded and send it the answer."""
        if not isinstance(call, dict) or not isinstance(call.get("call_id"), str):
            log.warning("session %s: unreadable tool call dropped", self.id)
            return
        call_id, tool = call["call_id"], call.get("tool")
        if self.tool_handler is None or not isinstance(tool, str):
            answer: dict[str, Any] = {"error": "error: this server offers no such tool"}
        else:
            try:
                answer = await self.tool_handler(self, tool, call.get("args"))
            except Exception as exc:  # the agent gets an answer whatever happened
                log.exception("session %s: tool call %s failed", self.id, tool)
                answer = {"error": f"error: the Jupyter server failed to run {tool}: {exc}"}
        handle = self.handle
        if handle is None:
            return
        try:
            response = await self._post(handle, f"/tool-calls/{call_id}", answer)
        except ServiceUnavailable as exc:
            log.warning("session %s: tool call answer not delivered: %s", self.id, exc)
            return
        if response.status_code >= 400:
            log.info("session %s: tool call %s no longer waits", self.id, call_id)

    def _marker(self, data: dict[str, Any], rseq: int) -> None:
        """A runner stream marker (see runner/protocol.py): continue after ``rseq``."""
        if data.get("gap"):
            log.warning(
                "session %s: runner events %s..%s were lost before they reached the log",
                self.id,
                data.get("from"),
                rseq,
            )
        elif not data.get("reset"):
            log.warning("session %s: unknown runner stream line %r", self.id, data)
            return
        self.log.skip(rseq, exact=True)

    # -- turns ---------------------------------------------------------------------------------

    def _turn_cost(self, event: ResultEvent) -> float | None:
        """The turn's own cost from the SDK's running total for the conversation.

        A resumed CLI goes on from the conversation's total; a new conversation (another
        ``sdk_session_id``) starts from 0; a total below the last one is a CLI that
        started over."""
        total = event.cost_total_usd
        if total is None:
            return event.cost_usd
        same = event.sdk_session_id is None or event.sdk_session_id == self.record.sdk_session_id
        base = self.record.cost_total_seen if same else 0.0
        self.record.cost_total_seen = total
        return round(total - base if total >= base else total, 10)

    async def start_turn(self, message: str) -> int:
        """Hand ``message`` to the runner; returns the log's seq before the turn's events."""
        if not isinstance(message, str) or not message.strip():
            raise BadRequest("message must be a non-empty string", field="message")
        if self.state == "busy":
            raise Conflict("the agent is busy with a turn; wait for its done event or interrupt it")
        if self.restoring:
            raise Conflict("the workspace is being restored from a checkpoint; send it again then")
        handle = self.handle
        if handle is None or self.state not in {"ready", "idle"}:
            raise Conflict(f"the session is {self.state}; it cannot take a message now")
        if self.before_turn is not None:
            await self.before_turn(self, message)
        before = self.log.last_seq
        self.touch()
        self.turn_started = time.time()
        self.last_result = None
        # a runner still loading the SDK answers 503 for a moment: hold the message
        self._sending = True
        try:
            response = await self._post(handle, "/turns", {"message": message}, wait_starting=60.0)
        finally:
            self._sending = False
        if response.status_code == 409:
            raise Conflict("the agent is busy with a turn; wait for its done event or interrupt it")
        if response.status_code >= 400:
            raise BadRequest(_message(response))
        self.record.state = "busy"
        if not self.record.first_prompt:
            self.record.first_prompt = message.strip()[:FIRST_PROMPT_CHARS]
        self.save()
        return before

    async def rewind_conversation(self, resume: str | None, at: str | None) -> None:
        """The runner's CLI goes on from an earlier point of the conversation (see
        ``AgentRunner.rewind``); the record keeps the conversation it now continues."""
        handle = self.handle
        if handle is None or self.state not in {"ready", "idle"}:
            raise Conflict(f"the session is {self.state}; send it a message first, then rewind")
        try:
            async with self.provider.channel(handle, timeout=150.0) as client:
                response = await client.post("/rewind", json={"resume": resume, "at": at})
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(f"the agent runner did not answer: {exc}") from None
        if response.status_code >= 400:
            raise Conflict(f"the agent could not rewind: {_message(response)}")
        self.record.sdk_session_id = response.json().get("sdk_session_id")
        self.record.cost_total_seen = 0.0  # another CLI process: its running total restarts
        self.save()

    @property
    def sending(self) -> bool:
        """A message is on its way to the runner (its turn has not started yet)."""
        return self._sending

    async def interrupt(self) -> bool:
        handle = self.handle
        if handle is None or self.state not in ACTIVE_STATES:
            raise Conflict(f"the session is {self.state}; there is no turn to interrupt")
        if self.state != "busy" and not self._sending:
            return False  # no turn runs (the runner may still be loading the SDK: no 503)
        response = await self._post(handle, "/interrupt", {}, wait_starting=30.0)
        return bool(response.json().get("interrupted", False))

    async def answer_permission(
        self,
        request_id: str,
        decision: str,
        message: str,
        *,
        answered_by: str,
        reason: Literal["user", "timeout"] = "user",
        note: str = "",
    ) -> None:
        """Answer a waiting request (only the server can: the runner wants its control
        token) and log who did."""
        own = self._server_requests.get(request_id)
        if own is not None and not own.done():
            own.set_result((decision == "allow", answered_by, message))
            self._log_answer(request_id, decision, answered_by, reason, note)
            return
        handle = self.handle
        if handle is None or self.state not in ACTIVE_STATES:
            raise Conflict(f"the session is {self.state}; no permission request is waiting")
        body = {"decision": decision, "message": message}
        response = await self._post(handle, f"/permissions/{request_id}", body)
        if response.status_code == 404:
            raise NotFound(f"no permission request {request_id!r} is waiting in this session")
        if response.status_code >= 400:
            raise BadRequest(_message(response))
        self._log_answer(request_id, decision, answered_by, reason, note)

    def _log_answer(
        self, request_id: str, decision: str, answered_by: str, reason: str, note: str
    ) -> None:
        self._forget_permission(request_id)
        self.log.append(
            PermissionAnswerEvent(
                request_id=request_id,
                decision="allow" if decision == "allow" else "deny",
                answered_by=answered_by,
                reason="timeout" if reason == "timeout" else "user",
                message=note,
            )
        )

    async def ask_permission(
        self, tool_name: str, tool_input: dict[str, Any]
    ) -> tuple[bool, str, str]:
        """A permission request of this server's own (the kernel tools: asked here, so a
        runner cannot skip it), logged and answered like the runner's, through the same
        REST call and ``permission_timeout``.  (allowed, who answered, their message);
        denied when the turn ends or the session stops first."""
        request_id = f"srv_{secrets.token_hex(8)}"
        future: asyncio.Future[tuple[bool, str, str]] = asyncio.get_running_loop().create_future()
        self._server_requests[request_id] = future
        event = PermissionRequestEvent(request_id=request_id, tool_name=tool_name, input=tool_input)
        self.log.append(event)
        self._track_permission(event)
        try:
            return await future
        finally:
            self._server_requests.pop(request_id, None)
            self._forget_permission(request_id)

    def _deny_server_requests(self, why: str) -> None:
        for future in self._server_requests.values():
            if not future.done():
                future.set_result((False, "", why))

    # -- permission timeouts --------------------------------------------------------------

    def _track_permission(self, event: Event) -> None:
        if isinstance(event, PermissionRequestEvent) and self.permission_timeout > 0:
            self._forget_permission(event.request_id)
            loop = asyncio.get_running_loop()
            self._permission_timers[event.request_id] = loop.call_later(
                self.permission_timeout,
                lambda: self._spawn_timeout(event.request_id, event.tool_name),
            )
        elif isinstance(event, ToolResultEvent):
            self._forget_permission(event.tool_use_id)
        elif isinstance(event, DoneEvent):
            for request_id in list(self._permission_timers):
                self._forget_permission(request_id)
            self._deny_server_requests("the turn ended")

    def _forget_permission(self, request_id: str) -> None:
        timer = self._permission_timers.pop(request_id, None)
        if timer is not None:
            timer.cancel()

    def _spawn_timeout(self, request_id: str, tool_name: str) -> None:
        task = asyncio.ensure_future(self._time_out(request_id, tool_name))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _time_out(self, request_id: str, tool_name: str) -> None:
        self._permission_timers.pop(request_id, None)
        # the agent hears "Permission to use <tool> was denied: <this>" from the runner
        why = f"nobody answered within {self.permission_timeout:g} s (permission_timeout)"
        try:
            await self.answer_permission(
                request_id,
                "deny",
                why,
                answered_by="timeout",
                reason="timeout",
                note=f"{tool_name} was denied: {why}",
            )
        except (Conflict, NotFound, BadRequest):
            pass  # answered meanwhile, or the turn ended
        except Exception:
            log.warning("session %s: timing out %s failed", self.id, request_id, exc_info=True)

    async def wait_connected(self, timeout: float = 60.0) -> bool:
        """Wait until the runner's claude CLI is connected (health ``ok``)."""
        handle = self.handle
        if handle is None:
            return False
        deadline = time.monotonic() + timeout
        async with self.provider.channel(handle, timeout=5.0) as client:
            while time.monotonic() < deadline:
                try:
                    if (await client.get("/health")).json().get("status") == "ok":
                        return True
                except (httpx.HTTPError, ValueError):
                    pass
                await asyncio.sleep(0.05)
        return False

    async def _post(
        self, handle: RunnerHandle, path: str, body: dict[str, Any], wait_starting: float = 0.0
    ) -> httpx.Response:
        """One call to the runner; an unreachable runner is a 503 that says so.  With
        ``wait_starting``, a runner answering 503 (still starting) is asked again."""
        deadline = time.monotonic() + wait_starting
        delay = 0.02
        try:
            async with self.provider.channel(handle, timeout=15.0) as client:
                while True:
                    response = await client.post(path, json=body)
                    if response.status_code != 503 or time.monotonic() + delay > deadline:
                        break
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 0.5)
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(f"the agent runner did not answer: {exc}") from None
        if response.status_code == 503:
            raise ServiceUnavailable(f"the agent runner is not ready: {_message(response)}")
        return response


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json().get("message") or response.text)
    except ValueError:
        return response.text or f"runner answered {response.status_code}"


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="milliseconds")


def _contents_path(workspace: Path, root: Path | None) -> str | None:
    if root is None:
        return None
    try:
        relative = workspace.resolve().relative_to(root.resolve())
    except (ValueError, OSError):
        return None
    return relative.as_posix()
