"""The agent behind the runner channel: one ``ClaudeSDKClient``, its turns and its events.

Every event it emits goes into an :class:`~.eventbuffer.EventBuffer` (``rseq``-numbered,
read by ``GET /events`` subscribers at their own cursors).

:class:`AgentRunner` connects the client in the background (``status`` in ``/health`` is
``starting`` → ``ok`` or ``failed`` with ``detail``), runs one turn at a time as a task
(``status busy`` … ``status idle``, ``done``), answers ``can_use_tool`` with
``permission_request`` events and waits for ``POST /permissions``, and interrupts.  If the
CLI dies, the turn ends with ``error`` + ``done`` and the client reconnects in the
background with ``resume=`` so the conversation goes on.

Size: one class around one ``ClaudeSDKClient``: connect, turns, permissions and interrupt
share its state; normalizing messages (``normalize.py``), SDK options (``options.py``) and
the event buffer (``eventbuffer.py``) live apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from claude_agent_sdk import (
    AssistantMessage,
    ClaudeSDKClient,
    ClaudeSDKError,
    CLIConnectionError,
    CLIJSONDecodeError,
    CLINotFoundError,
    PermissionResultAllow,
    PermissionResultDeny,
    ProcessError,
    ResultMessage,
    StreamEvent,
    SystemMessage,
    ToolPermissionContext,
)
from claude_agent_sdk.types import PermissionResult

from .._version import __version__
from ..checkpoints.conversation import fork_transcript
from ..config import AgentConfig
from ..errors import BadRequest, Conflict, NotFound
from ..events import (
    DoneEvent,
    ErrorEvent,
    EventBase,
    MessageEvent,
    PermissionRequestEvent,
    ResultEvent,
    StatusEvent,
)
from .eventbuffer import RSEQ_FILE, EventBuffer
from .jupyter_tools import (
    JUPYTER_SERVER,
    READ_ONLY_TOOLS,
    SERVER_APPROVED_TOOLS,
    ToolBroker,
    jupyter_mcp_server,
)
from .normalize import Normalizer
from .options import build_sdk_options, environment_note
from .protocol import denial_message
from .users import AgentUser, resolve_agent_user

__all__ = [
    "AgentRunner",
    "AgentUser",
    "RunnerSettings",
    "cli_env",
    "resolve_agent_user",
]

log = logging.getLogger(__name__)

#: a CLI that has not answered ``initialize`` by then is not going to
CONNECT_TIMEOUT = 90.0
#: after ``interrupt()`` the turn normally ends in ~30 ms; past this the CLI is wedged
INTERRUPT_GRACE = 10.0
#: requests without the control token reported to the session (the rest are counted)
REFUSALS_REPORTED = 20
#: stderr lines of the CLI kept for ``/health`` and error messages
STDERR_LINES = 30

HealthStatus = Literal["starting", "ok", "failed", "stopping"]


def cli_env(state_dir: Path, base_url: str, session_token: str) -> dict[str, str]:
    """The CLI's environment on top of the runner's own (which the provider keeps clean)."""
    return {
        "ANTHROPIC_BASE_URL": base_url,
        # the per-session token the gateway swaps for the real key
        "ANTHROPIC_API_KEY": session_token,
        # state and transcripts live across runner restarts so ``resume`` works
        "CLAUDE_CONFIG_DIR": str(state_dir / "claude"),
        "CLAUDE_CODE_TMPDIR": str(state_dir / "tmp"),
        "TMPDIR": str(state_dir / "tmp"),
        "HOME": str(state_dir / "home"),
        # only /v1/messages: no telemetry, title requests or DNS lookups
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        # upstream failures must surface in seconds, not after ~3 minutes of backoff
        "CLAUDE_CODE_MAX_RETRIES": "2",
        # this CLI runs Agent sub-agents in the background by default: the turn's result
        # and done would come before their work, which then starts turns of its own
        "CLAUDE_CODE_DISABLE_BACKGROUND_TASKS": "1",
    }


@dataclass
class RunnerSettings:
    config: AgentConfig
    workspace: Path
    state_dir: Path
    base_url: str
    session_token: str
    resume: str | None = None
    agent_user: AgentUser | None = None
    #: a root-owned workspace folder is given to ``agent_user`` (a fresh Fly volume)
    adopt_workspace: bool = False
    #: mounted read-only: the agent reads it, nothing probes it for writing
    workspace_readonly: bool = False
    #: what the provider says (``AGCLUSTER_ISOLATED``, ``AGCLUSTER_NETWORK``): is the agent
    #: isolated from the machine, do its tools reach the network; the agent is told
    isolated: bool = False
    network: bool = True
    #: offer the ``jupyter`` MCP server (``AGCLUSTER_JUPYTER_TOOLS``): the user's notebooks,
    #: through the Jupyter server
    jupyter_tools: bool = False
    #: and its kernel tools (the server approves them: never asked here)
    kernel_tools: bool = False


ClientFactory = Callable[..., ClaudeSDKClient]


class AgentRunner:
    """One ``ClaudeSDKClient`` and everything the runner channel asks of it."""

    def __init__(
        self, settings: RunnerSettings, *, client_factory: ClientFactory = ClaudeSDKClient
    ) -> None:
        self.settings = settings
        with contextlib.suppress(OSError):  # _prepare() reports it properly
            settings.state_dir.mkdir(parents=True, exist_ok=True)
        self.buffer = EventBuffer(counter=settings.state_dir / RSEQ_FILE)
        self.normalize = Normalizer()
        self.status: HealthStatus = "starting"
        self.detail = ""
        self.turn = 0
        self.sdk_session_id: str | None = settings.resume
        self.stderr_tail: deque[str] = deque(maxlen=STDERR_LINES)
        self._client_factory = client_factory
        self._client: ClaudeSDKClient | None = None
        self._connect_task: asyncio.Task[None] | None = None
        self._turn_task: asyncio.Task[None] | None = None
        self._permissions: dict[str, asyncio.Future[PermissionResult]] = {}
        #: the ``jupyter`` tools' calls waiting for the server
        self.tools = ToolBroker(self.buffer.append_line)
        self._cancel_reason = ""
        self._closing = False
        #: requests refused for want of the control token
        self.refusals = 0
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        """Connect the client in the background; ``/health`` says when it is ready."""
        self._connect_task = self._spawn(self._connect(self.settings.resume))

    @property
    def busy(self) -> bool:
        return self._turn_task is not None and not self._turn_task.done()

    def health(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "detail": self.detail,
            "busy": self.busy,
            "turn": self.turn,
            "last_rseq": self.buffer.last_rseq,
            "sdk_session_id": self.sdk_session_id,
            "pending_permissions": sorted(self._permissions),
            "pending_tool_calls": self.tools.pending,
            "version": __version__,
            "pid": os.getpid(),
        }

    def emit(self, event: EventBase) -> int:
        return self.buffer.append(event)

    def refused(self, method: str, path: str) -> None:
        """A request without the control token: something other than the server (the
        agent's own processes) tried the runner's API.  Logged, and the session hears
        of the first ``REFUSALS_REPORTED``."""
        self.refusals += 1
        if self.refusals > REFUSALS_REPORTED:
            return
        log.warning("refused %s %s: no valid control token", method, path)
        more = " (further attempts are counted, not reported)"
        self.emit(
            ErrorEvent(
                message=f"the runner refused {method} {path}: only the Jupyter server may "
                f"control this session{more if self.refusals == REFUSALS_REPORTED else ''}",
                code="runner_refused",
            )
        )

    async def close(self) -> None:
        """Deny what waits, end the running turn, close the client (and so the CLI)."""
        if self._closing:
            return
        self._closing = True
        self.status = "stopping"
        self._deny_all("the agent is shutting down")
        connecting = self._connect_task
        if connecting is not None and not connecting.done():
            # the SDK stops a half-started CLI on cancellation; let it finish doing so
            connecting.cancel()
            await asyncio.wait({connecting}, timeout=30)
        turn = self._turn_task
        if turn is not None and not turn.done():
            self._cancel_reason = "the runner is shutting down"
            if self._client is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._client.interrupt(), 2)
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(turn), 3)
            turn.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await turn
        await self._disconnect()
        for task in list(self._tasks):
            task.cancel()
        self.buffer.close()

    # -- connecting ----------------------------------------------------------------

    async def _connect(self, resume: str | None) -> None:
        self.status, self.detail = "starting", ""
        problem = await self._open_client(resume)
        if problem:
            self._fail(problem)
            return
        self.status, self.detail = "ok", ""
        self.emit(StatusEvent(state="ready"))

    async def _open_client(self, resume: str | None) -> str | None:
        """Start the CLI and connect; what went wrong, or None with ``self._client`` set."""
        started = time.monotonic()
        self.stderr_tail.clear()
        try:
            problem = await self._prepare()
        except OSError as exc:
            problem = f"cannot prepare the state directory {self.settings.state_dir}: {exc}"
        if problem:
            return problem
        s = self.settings
        options = build_sdk_options(
            s.config,
            cwd=str(s.workspace),
            env=cli_env(s.state_dir, s.base_url, s.session_token),
            can_use_tool=self._can_use_tool,
            stderr=self._on_stderr,
            resume=resume,
            # the uid, not a name: the image need not have a passwd entry for the host's uid
            user=s.agent_user.uid if s.agent_user else None,
            environment=environment_note(str(s.workspace), isolated=s.isolated, network=s.network),
            jupyter=(
                jupyter_mcp_server(self.tools, kernel=s.kernel_tools) if s.jupyter_tools else None
            ),
            jupyter_kernel=s.kernel_tools,
        )
        client = self._client_factory(options)
        try:
            await asyncio.wait_for(client.connect(), CONNECT_TIMEOUT)
        except asyncio.TimeoutError:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.disconnect(), 30)
            return f"the claude CLI did not answer within {CONNECT_TIMEOUT:.0f} s"
        except Exception as exc:  # noqa: BLE001 - the SDK raises many kinds; all mean "no CLI"
            return f"the claude CLI could not start: {exc}"
        self._client = client
        log.info("claude CLI connected in %.2f s (resume=%s)", time.monotonic() - started, resume)
        return None

    async def _prepare(self) -> str | None:
        """State dirs owned by the agent user; a workspace it can write.  A problem or None."""
        s = self.settings
        for name in ("claude", "tmp", "home"):
            path = s.state_dir / name
            path.mkdir(parents=True, exist_ok=True, mode=0o700)
            if s.agent_user is not None:
                # transcripts pile up in there: keep the loop free while walking them
                await asyncio.to_thread(_chown_tree, path, s.agent_user.uid, s.agent_user.gid)
        if s.adopt_workspace:
            s.workspace.mkdir(parents=True, exist_ok=True)  # a fresh volume: not yet there
        if not s.workspace.is_dir():
            return f"the workspace {s.workspace} does not exist or is not a directory"
        if s.workspace_readonly:
            return None
        if s.agent_user is None:
            if not os.access(s.workspace, os.W_OK | os.X_OK):
                return f"the workspace {s.workspace} is not writable by the runner"
            return None
        if s.adopt_workspace and os.geteuid() == 0 and s.workspace.stat().st_uid == 0:
            # a fresh volume mounted root-owned (Fly): the agent gets the workspace
            # folder (only that: whatever is inside was written by it or given to it)
            os.chown(s.workspace, s.agent_user.uid, s.agent_user.gid)
        # probe with the very credentials the CLI gets: the SDK sets only the uid, and
        # the runner already took the agent's groups (process._drop_groups)
        probe = await asyncio.create_subprocess_exec(
            "/bin/sh",
            "-c",
            'f="$1/.agcluster-probe-$$" && : > "$f" && rm -f "$f"',
            "sh",
            str(s.workspace),
            user=s.agent_user.uid,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        if await probe.wait() != 0:
            return (
                f"the workspace {s.workspace} is not writable by the agent user "
                f"{s.agent_user.name} (uid {s.agent_user.uid}); chown it to that user"
            )
        return None

    def _fail(self, detail: str) -> None:
        tail = self._stderr_summary()
        self.status = "failed"
        self.detail = f"{detail}; CLI stderr: {tail}" if tail else detail
        log.error("agent failed: %s", self.detail)
        self.emit(StatusEvent(state="failed", detail=self.detail))

    def _on_stderr(self, line: str) -> None:
        line = line.rstrip()
        if line:
            log.info("claude: %s", line)
            self.stderr_tail.append(line)

    def _stderr_summary(self, lines: int = 5) -> str:
        return " | ".join(list(self.stderr_tail)[-lines:])

    async def _disconnect(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.disconnect(), 30)

    async def _reconnect(self, reason: str) -> None:
        """The CLI is gone or wedged: start a new one on the same conversation."""
        log.warning("reconnecting the claude CLI: %s", reason)
        await self._disconnect()
        if self._closing:
            return
        self.status, self.detail = "starting", ""
        resume = self.sdk_session_id
        problem = await self._open_client(resume)
        detail = ""
        if problem and resume:
            # a CLI killed in its first turn may not have saved the transcript yet: a
            # new conversation in the same workspace beats a dead session
            detail = f"could not resume conversation {resume} ({problem}); started a new one"
            log.warning("%s", detail)
            problem = await self._open_client(None)
            self.sdk_session_id = None
            self.normalize = Normalizer()  # the old conversation's task list is gone too
        if problem:
            self._fail(problem)
            return
        self.status, self.detail = "ok", ""
        self.emit(StatusEvent(state="ready", detail=detail))

    async def _ready_client(self) -> ClaudeSDKClient:
        if self._connect_task is not None and not self._connect_task.done():
            await asyncio.shield(self._connect_task)
        if self._client is None:
            raise Conflict(f"the agent is not running: {self.detail or self.status}")
        return self._client

    # -- turns ---------------------------------------------------------------------

    def start_turn(self, message: Any) -> int:
        """Run a turn in the background; its number.  Conflict while busy or failed."""
        if not isinstance(message, str) or not message.strip():
            raise BadRequest("message must be a non-empty string", field="message")
        if self._closing:
            raise Conflict("the runner is shutting down")
        if self.busy:
            raise Conflict("a turn is already running; interrupt it or wait for done")
        if self.status == "failed":
            raise Conflict(f"the agent failed: {self.detail}")
        self.turn += 1
        self._cancel_reason = ""
        self._turn_task = self._spawn(self._run_turn(message))
        return self.turn

    async def _run_turn(self, message: str) -> None:
        self.emit(StatusEvent(state="busy"))
        # the prompt belongs to the conversation: exports and UIs show who said what
        self.emit(MessageEvent(role="user", text=message))
        lost: str | None = None
        client: ClaudeSDKClient | None = None
        try:
            client = await self._ready_client()
            await client.query(message)
            ended = False
            anchor: str | None = None
            async for msg in client.receive_response():
                self._track_session(msg)
                if isinstance(msg, AssistantMessage) and not msg.parent_tool_use_id and msg.uuid:
                    anchor = msg.uuid
                for event in self.normalize(msg):
                    if isinstance(event, ResultEvent):
                        # where a rewind to the end of this turn resumes the conversation
                        event.message_uuid = anchor
                        event.sdk_session_id = event.sdk_session_id or self.sdk_session_id
                    self.emit(event)
                ended = isinstance(msg, ResultMessage)
            if not ended:
                raise CLIConnectionError("the claude CLI stopped before the turn ended")
        except asyncio.CancelledError:
            reason = self._cancel_reason or "the turn was cancelled"
            self.emit(ErrorEvent(message=reason, code="cancelled"))
            lost = reason
            raise
        except Conflict as exc:
            self.emit(ErrorEvent(message=exc.message, code="not_running"))
        except ClaudeSDKError as exc:
            text, code = self._describe(exc)
            self.emit(ErrorEvent(message=text, code=code))
            lost = text
        except Exception as exc:  # a bug in the runner must still end the turn
            log.exception("turn failed")
            self.emit(ErrorEvent(message=f"runner error: {exc}", code="runner_error"))
        finally:
            self._deny_all("the turn ended")
            self.emit(StatusEvent(state="idle"))
            self.emit(DoneEvent())
            if lost and client is not None and client is self._client and not self._closing:
                # a half-read or dead client would mix this turn's leftovers into the next
                self._connect_task = self._spawn(self._reconnect(lost))

    def _describe(self, exc: ClaudeSDKError) -> tuple[str, str]:
        tail = self._stderr_summary()
        if isinstance(exc, CLINotFoundError):
            return str(exc), "cli_not_found"
        if isinstance(exc, ProcessError):
            text = f"the claude CLI exited (code {exc.exit_code})"
            return (f"{text}: {tail}" if tail else text), "cli_exited"
        if isinstance(exc, CLIJSONDecodeError):
            return f"the claude CLI sent something unreadable: {exc}", "cli_protocol"
        if isinstance(exc, CLIConnectionError):
            return (f"{exc}: {tail}" if tail else str(exc)), "cli_connection"
        return str(exc), "sdk_error"

    def _track_session(self, msg: object) -> None:
        session_id: Any = None
        if isinstance(msg, (ResultMessage, StreamEvent)):
            session_id = msg.session_id
        elif isinstance(msg, AssistantMessage):
            session_id = msg.session_id
        elif isinstance(msg, SystemMessage) and msg.subtype == "init":
            session_id = msg.data.get("session_id")
        if isinstance(session_id, str) and session_id:
            self.sdk_session_id = session_id

    async def rewind(self, resume: str | None, at: str | None) -> str | None:
        """Start the conversation again from an earlier point; the conversation id the CLI
        now continues (None: a new conversation, its id comes with its first turn).

        ``resume`` and ``at``: a copy of conversation ``resume`` up to and including
        message ``at`` (the SDK's offline ``fork_session``), resumed: the original stays
        as it was, so an undo can resume it.  ``resume`` alone: that conversation as it
        is.  Neither: a new conversation.  Conflict while a turn runs.
        """
        if self.busy:
            raise Conflict("a turn is running; interrupt it or wait for its done, then rewind")
        if at is not None and not resume:
            raise BadRequest("a rewind to a message needs its conversation", field="resume")
        if self._connect_task is not None and not self._connect_task.done():
            await asyncio.shield(self._connect_task)
        target = resume
        if resume and at:
            try:
                target = await asyncio.to_thread(self._fork, resume, at)
            except (ValueError, FileNotFoundError) as exc:
                raise Conflict(f"the conversation cannot be rewound there: {exc}") from None
        await self._disconnect()
        self.status, self.detail = "starting", ""
        problem = await self._open_client(target)
        if problem:
            self._fail(problem)
            raise Conflict(f"the agent did not start again after the rewind: {problem}")
        self.sdk_session_id = target
        self.normalize = Normalizer()  # the task list belonged to the later turns
        self.status, self.detail = "ok", ""
        log.info("conversation rewound: %s up to %s -> %s", resume, at, target)
        return target

    def _fork(self, conversation: str, at: str) -> str:
        """The SDK's offline fork of the CLI's transcript, in this session's config dir."""
        return fork_transcript(self.settings.state_dir / "claude", conversation, at)

    async def interrupt(self) -> bool:
        """Stop the running turn (it then ends with ``done``); False when idle."""
        turn = self._turn_task
        if turn is None or turn.done():
            return False
        self._deny_all("interrupted by the user")
        self._cancel_reason = "interrupted by the user"
        client = self._client
        if client is None:  # still connecting: nothing to tell the CLI
            turn.cancel()
            return True
        try:
            await asyncio.wait_for(client.interrupt(), INTERRUPT_GRACE)
        except Exception as exc:  # noqa: BLE001 - any failure: cancel the turn instead
            log.warning("interrupt failed (%s); cancelling the turn", exc)
            turn.cancel()
            return True
        self._spawn(self._interrupt_watchdog(turn))
        return True

    async def _interrupt_watchdog(self, turn: asyncio.Task[None]) -> None:
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(turn), INTERRUPT_GRACE)
        if not turn.done():
            log.warning("the CLI ignored the interrupt; cancelling the turn")
            turn.cancel()

    # -- permissions ---------------------------------------------------------------

    async def _can_use_tool(
        self, tool_name: str, tool_input: dict[str, Any], context: ToolPermissionContext
    ) -> PermissionResult:
        if self._closing:
            return PermissionResultDeny(
                message=denial_message(tool_name, "the agent is shutting down")
            )
        if tool_name.startswith(f"mcp__{JUPYTER_SERVER}__"):
            if tool_name.rpartition("__")[2] in READ_ONLY_TOOLS:
                return PermissionResultAllow()  # reading asks no one, as Read does not
            if tool_name.rpartition("__")[2] in SERVER_APPROVED_TOOLS:
                return PermissionResultAllow()  # the Jupyter server asks, per call
        request_id = context.tool_use_id or ""
        if not request_id or request_id in self._permissions:
            request_id = f"perm_{secrets.token_hex(8)}"
        future: asyncio.Future[PermissionResult] = asyncio.get_running_loop().create_future()
        self._permissions[request_id] = future
        self.emit(
            PermissionRequestEvent(request_id=request_id, tool_name=tool_name, input=tool_input)
        )
        try:
            # no timeout: a person may take their time; interrupt/shutdown deny it
            answer = await future
        finally:
            self._permissions.pop(request_id, None)
        if isinstance(answer, PermissionResultDeny):
            # the CLI hands the message to the model as the tool's (error) result: say it
            # was refused, or the model takes "not now" for something the tool printed
            answer = PermissionResultDeny(
                message=denial_message(tool_name, answer.message), interrupt=answer.interrupt
            )
        return answer

    def resolve_permission(self, request_id: str, decision: Any, message: Any = None) -> None:
        """Answer a waiting ``permission_request``.  NotFound / BadRequest."""
        if decision not in ("allow", "deny"):
            raise BadRequest("decision must be 'allow' or 'deny'", field="decision")
        if message is not None and not isinstance(message, str):
            raise BadRequest("message must be a string", field="message")
        future = self._permissions.get(request_id)
        if future is None or future.done():
            raise NotFound(f"no permission request {request_id!r} is waiting")
        if decision == "allow":
            future.set_result(PermissionResultAllow())
        else:
            future.set_result(PermissionResultDeny(message=message or ""))

    def _deny_all(self, why: str) -> None:
        self.tools.cancel_all(why)
        for future in list(self._permissions.values()):
            if not future.done():
                future.set_result(PermissionResultDeny(message=why))

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        # keep a reference: the loop holds tasks weakly
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    """chown -R without following symlinks (the agent may have planted some)."""
    os.lchown(root, uid, gid)
    for base, dirs, files in os.walk(root):
        for name in dirs + files:
            with contextlib.suppress(FileNotFoundError):
                os.lchown(os.path.join(base, name), uid, gid)
