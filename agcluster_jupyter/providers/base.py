"""The provider interface: where a session's runner lives and how it is reached.

A provider creates, stops, inspects and lists runners (by label, for recovery), hands out
the runner channel (an ``httpx.AsyncClient`` speaking ``runner/protocol.py``) and the
workspace file access.  ``local`` and ``docker`` share the host's workspace folder and
reach the runner over a unix socket; ``fly`` and ``kubernetes`` reach it over TCP with a
bearer token and reach files through the runner.

Exceptions::

    ProviderError                   anything a provider could not do
    ├── ProviderUnavailable         the backend (engine, API) cannot be reached → 503
    └── RunnerStartError            the runner did not come up healthy
"""

from __future__ import annotations

import abc
import asyncio
import enum
import functools
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ..config import AgentConfig

__all__ = [
    "LABEL_CONFIG",
    "LABEL_OWNER",
    "LABEL_SESSION",
    "LABEL_STATE_ROOT",
    "LABEL_VERSION",
    "Provider",
    "ProviderError",
    "ProviderHealth",
    "ProviderUnavailable",
    "RunnerFault",
    "RunnerHandle",
    "RunnerSpec",
    "RunnerStartError",
    "RunnerStatus",
    "channel_for",
    "runner_ready",
    "tls_context",
]

LABEL_SESSION = "agcluster.session-id"
LABEL_CONFIG = "agcluster.config-id"
LABEL_OWNER = "agcluster.owner"
LABEL_VERSION = "agcluster.version"
#: the server's state_root: a server removes only the orphans of its own installation,
#: never those of another server of the same user on the same engine
LABEL_STATE_ROOT = "agcluster.state-root"


class ProviderError(Exception):
    """A provider could not do what was asked."""


class ProviderUnavailable(ProviderError):
    """The provider's backend cannot be reached; the message says which and how to fix it."""


class RunnerStartError(ProviderError):
    """The runner was created but never answered its health check."""


class RunnerStatus(str, enum.Enum):
    RUNNING = "running"
    EXITED = "exited"
    MISSING = "missing"


@dataclass(frozen=True)
class ProviderHealth:
    ok: bool
    isolated: bool
    detail: str = ""


@dataclass(frozen=True)
class RunnerFault:
    """Something the runner's environment did to it (e.g. a process killed for memory)."""

    code: str
    message: str


@dataclass
class RunnerSpec:
    """Everything a provider needs to start one session's runner."""

    session_id: str
    config: AgentConfig
    workspace: Path
    #: per-session state kept on the server: the CLI config dir (for resume), tmp, home
    state_dir: Path
    #: per-session folder for the runner and gateway unix sockets
    socket_dir: Path
    session_token: str
    #: where the runner's model calls go: ``unix:/path`` or an ``http(s)://`` URL
    gateway: str
    owner: str = ""
    resume: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    #: the token the server presents on every runner request; the runner is given only
    #: its digest (``runner.protocol.token_digest``)
    control_token: str = ""
    #: for a workspace on the session's volume (``remote``): the runner keeps its
    #: checkpoints, bounded to this (0: none)
    checkpoint_max_bytes: int = 0
    #: the workspace is a folder of the user's tree: never chowned, never deleted
    folder_workspace: bool = False
    #: mounted read-only (an isolating provider enforces it)
    workspace_readonly: bool = False
    #: the runner offers the ``jupyter`` MCP tools, brokered by this server
    jupyter_tools: bool = False
    #: and its kernel tools (the session's ``kernel_access`` is not ``deny``)
    kernel_tools: bool = False


@dataclass
class RunnerHandle:
    """A running (or once running) runner, as the session record keeps it."""

    provider: str
    session_id: str
    #: the provider's own id: a pid, a container id, a pod or machine name
    agent_id: str
    #: ``unix:/path/runner.sock`` or ``http://host:port``
    endpoint: str
    #: the control token every request to the runner carries (``RunnerSpec``'s)
    token: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "session_id": self.session_id,
            "agent_id": self.agent_id,
            "endpoint": self.endpoint,
            "extra": self.extra,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], token: str = "") -> RunnerHandle:
        return cls(
            provider=data["provider"],
            session_id=data["session_id"],
            agent_id=data["agent_id"],
            endpoint=data["endpoint"],
            token=token,
            extra=dict(data.get("extra") or {}),
        )


def runner_ready(health: dict[str, Any]) -> bool:
    """Is a runner that answered ``/health`` with ``health`` ready for a session?

    Yes once it answers at all (``starting`` or ``ok``): it takes a message from then on
    and holds it until its claude CLI is connected, so a launch need not wait for the
    SDK to load.  A CLI that then fails to start turns the session ``failed``.
    """
    return health.get("status") in {"starting", "ok"}


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One TLS context for every runner channel: making one reads the CA bundle (~75 ms
    on the event loop), and a channel is made for every runner call."""
    return httpx.create_ssl_context()


def channel_for(handle: RunnerHandle, timeout: float = 10.0) -> httpx.AsyncClient:
    """An HTTP client for the runner API of ``handle`` (unix socket or TCP), presenting
    its control token."""
    headers = {"Authorization": f"Bearer {handle.token}"} if handle.token else {}
    if handle.endpoint.startswith("unix:"):
        transport = httpx.AsyncHTTPTransport(
            uds=handle.endpoint.removeprefix("unix:"), verify=tls_context()
        )
        return httpx.AsyncClient(
            transport=transport, base_url="http://runner", headers=headers, timeout=timeout
        )
    return httpx.AsyncClient(
        base_url=handle.endpoint, headers=headers, timeout=timeout, verify=tls_context()
    )


class Provider(abc.ABC):
    """Where runners live.  Every method is async and bounded by a timeout."""

    name: str = ""
    #: whether sessions are isolated from the host (False only for ``local``)
    isolated: bool = True
    #: where the agent sees its workspace (None: at its host path, as with ``local``)
    workspace_mount: str | None = "/workspace"
    #: the runner is on another machine: reached over TCP, its model calls come to the
    #: gateway's TCP listener, and its workspace is on its own volume (files through it)
    remote: bool = False
    #: the session record may keep the runner's control token (so a restarted server
    #: re-adopts the runner): False where the agent could read that record
    persists_control_token: bool = True

    @abc.abstractmethod
    async def health(self) -> ProviderHealth:
        """Can this provider start runners right now?"""

    def check_folder(self, folder: Path) -> None:
        """Can an agent of this provider work in ``folder`` (a folder of the user's
        tree)?  A ``BadRequest`` that says why not."""
        return None

    @abc.abstractmethod
    async def create(self, spec: RunnerSpec) -> RunnerHandle:
        """Start a runner and return once its health check answers."""

    @abc.abstractmethod
    async def stop(self, handle: RunnerHandle) -> None:
        """Stop and remove the runner; the workspace stays."""

    @abc.abstractmethod
    async def status(self, handle: RunnerHandle) -> RunnerStatus:
        """Is the runner still there?"""

    @abc.abstractmethod
    async def list_runners(self, labels: dict[str, str]) -> list[RunnerHandle]:
        """Runners carrying all of ``labels`` (for recovery and orphan removal)."""

    async def resources(self, handle: RunnerHandle) -> dict[str, Any]:
        """CPU and memory use, where the provider can tell; ``{}`` otherwise."""
        return {}

    async def exit_reason(self, handle: RunnerHandle) -> str | None:
        """Why a runner that is no longer running stopped (out of memory, exit code and
        last output), where the provider can tell; None otherwise."""
        return None

    async def faults(self, handle: RunnerHandle, since: float) -> list[RunnerFault]:
        """What the runner's environment did to it since ``since`` (epoch seconds) that
        its own events cannot tell, each reported once (e.g. an OOM kill of a tool)."""
        return []

    async def purge_workspace(self, session_id: str, handle: RunnerHandle | None) -> None:  # noqa: B027
        """Delete what the provider keeps of a stopped session's workspace (a remote
        volume); the server's own folders are the manager's.  Nothing by default."""

    def channel(self, handle: RunnerHandle, timeout: float = 10.0) -> httpx.AsyncClient:
        return channel_for(handle, timeout)

    async def wait_ready(
        self,
        handle: RunnerHandle,
        timeout: float,
        *,
        poll: float = 0.02,
        check_alive: Callable[[], Awaitable[None]] | None = None,
        check_every: float = 0.5,
    ) -> None:
        """Poll the runner's ``/health`` until it is ready (no fixed sleeps).

        ``check_alive`` (which raises ``RunnerStartError`` for a runner that died) runs
        every ``check_every`` s, so a dead runner is reported at once, not at the timeout.
        Raises ``RunnerStartError`` for a runner that reports ``failed`` and
        ``TimeoutError`` (with the runner's last detail) when ``timeout`` runs out.
        """
        deadline = time.monotonic() + timeout
        next_check = time.monotonic()
        detail = ""
        async with self.channel(handle, timeout=2.0) as client:
            while time.monotonic() < deadline:
                if check_alive is not None and time.monotonic() >= next_check:
                    next_check = time.monotonic() + check_every
                    await check_alive()
                try:
                    body: dict[str, Any] = (await client.get("/health")).json()
                    if runner_ready(body):
                        return
                    if body.get("status") == "failed":
                        raise RunnerStartError(f"the runner failed: {body.get('detail', '')}")
                    detail = str(body.get("detail", ""))
                except (httpx.HTTPError, ValueError):
                    pass  # no socket yet, or the runner still binding it
                await asyncio.sleep(poll)
        raise TimeoutError(detail)

    async def close(self) -> None:  # noqa: B027 - optional hook, most providers hold nothing
        """Release the provider's own resources (not the runners)."""
