"""The ``fly`` provider: one Fly Machine per session, its workspace on a Fly Volume.

Request bodies come from :mod:`.fly_spec` (pure functions); this module only talks to the
Machines API (``https://api.machines.dev/v1``, bearer token) over ``httpx.AsyncClient``.
Every call has a timeout; transient failures (429, 5xx, transport errors) are retried a
bounded number of times with exponential backoff, only where repeating is safe (creates
are retried only when the request never got through: 429 or a failed connect).  An
unreachable API or a refused token is ``ProviderUnavailable`` with what to fix.

Lifecycle::

    create   reuse or create the session's volume → destroy a machine left by this
             session → create the machine → wait ``started`` → runner ``/health``
    stop     (Provider.stop) the runner shuts down, the machine is destroyed; the volume
             (the workspace) stays
    stop_machine / suspend / start   the Fly states, machine kept
    destroy  the machine only;  purge_workspace machine(s) and the volume

The runner listens on Fly's private network: ``http://<id>.vm.<app>.internal:8765`` with
a per-session bearer token this provider makes (``RunnerHandle.token``; the session
record keeps it, the API never returns it except in the machine's env).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Any

import httpx

from .base import (
    LABEL_SESSION,
    Provider,
    ProviderError,
    ProviderHealth,
    ProviderUnavailable,
    RunnerHandle,
    RunnerSpec,
    RunnerStartError,
    RunnerStatus,
    tls_context,
)
from .fly_spec import (
    WORKSPACE_PATH,
    FlySettings,
    machine_request,
    runner_endpoint,
    volume_name,
    volume_request,
)

__all__ = ["FlyProvider"]

log = logging.getLogger(__name__)

#: Fly's ``wait`` blocks at most this long per call
WAIT_MAX = 60
BACKOFF_MAX = 5.0


class _Refused(ProviderError):
    """The API answered a 4xx that another try would not change."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class _Missing(_Refused):
    """The machine or volume is not there (404)."""


class FlyProvider(Provider):
    name = "fly"
    isolated = True
    workspace_mount = WORKSPACE_PATH
    remote = True

    def __init__(
        self,
        settings: FlySettings,
        token: str,
        *,
        start_timeout: float = 120.0,
        call_timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 0.2,
        transport: httpx.AsyncBaseTransport | None = None,
        runner_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.start_timeout = start_timeout
        self.call_timeout = call_timeout
        self.retries = retries
        self.backoff = backoff
        #: how runners are reached (tests: a stand-in; default: the network)
        self.runner_transport = runner_transport
        self._client = httpx.AsyncClient(
            base_url=f"{settings.api_base.rstrip('/')}/apps/{settings.app}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=call_timeout,
            transport=transport,
        )

    # -- calling the API --------------------------------------------------------------------

    def _where(self) -> str:
        return f"the Fly Machines API at {self.settings.api_base}"

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, str] | None = None,
        idempotent: bool = True,
        timeout: float | None = None,
    ) -> Any:
        """The JSON answer of one API call, retried as the module docstring says."""
        attempts = 1 + self.retries
        delay = self.backoff
        for attempt in range(1, attempts + 1):
            retry_after: float | None = None
            try:
                response = await self._client.request(
                    method, path, json=json, params=params, timeout=timeout or self.call_timeout
                )
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                failure = f"{self._where()} cannot be reached ({exc or type(exc).__name__})"
            except httpx.TransportError as exc:
                failure = f"{self._where()} did not answer ({exc or type(exc).__name__})"
                if not idempotent:
                    raise ProviderUnavailable(failure + "; check network access to Fly") from None
            else:
                status = response.status_code
                if status < 400:
                    return response.json() if response.content else {}
                error = _error_text(response)
                if status in (401, 403):
                    raise ProviderUnavailable(
                        f"{self._where()} refused the token ({status}: {error}); set a Fly API "
                        f"token with access to the app {self.settings.app!r} "
                        "(fly tokens create deploy -a APP)"
                    )
                if status == 404:
                    raise _Missing(error, status)
                if status != 429 and status < 500:
                    raise _Refused(f"Fly Machines API: {status} {error}", status)
                if status != 429 and not idempotent:
                    raise ProviderError(f"Fly Machines API: {status} {error}")
                failure = f"{self._where()} answered {status} ({error})"
                header = response.headers.get("Retry-After", "")
                retry_after = float(header) if header.isdigit() else None
            if attempt == attempts:
                raise ProviderUnavailable(
                    f"{failure}; gave up after {attempts} tries; check https://status.flyio.net "
                    "and the network"
                )
            pause = min(retry_after if retry_after is not None else delay, BACKOFF_MAX)
            log.debug("fly: %s; retrying in %.2f s", failure, pause)
            await asyncio.sleep(pause)
            delay = min(delay * 2, BACKOFF_MAX)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _wait(self, machine_id: str, state: str, timeout: float) -> None:
        """Until the machine is in ``state``; ``TimeoutError`` after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"the Fly machine {machine_id} did not become {state}")
            chunk = max(1, min(WAIT_MAX, math.ceil(left)))
            try:
                await self._request(
                    "GET",
                    f"/machines/{machine_id}/wait",
                    params={"state": state, "timeout": str(chunk)},
                    timeout=chunk + self.call_timeout,
                )
                return
            except _Refused as exc:
                if exc.status != 408:
                    raise
                # Fly's wait ran out: ask again until our own deadline

    # -- health -----------------------------------------------------------------------------

    async def health(self) -> ProviderHealth:
        try:
            await self._request("GET", "", timeout=10.0)
        except ProviderError as exc:
            return ProviderHealth(ok=False, isolated=True, detail=str(exc))
        return ProviderHealth(
            ok=True,
            isolated=True,
            detail=(
                f"Fly Machines app {self.settings.app} in {self.settings.region}, "
                f"image {self.settings.image}"
            ),
        )

    # -- create -----------------------------------------------------------------------------

    async def _volume_for(self, spec: RunnerSpec) -> str:
        """The session's workspace volume: the one it already has, or a new one."""
        name = volume_name(spec.session_id)
        volumes: list[dict[str, Any]] = await self._request("GET", "/volumes")
        for volume in volumes:
            if volume.get("name") == name and volume.get("state") not in {
                "destroyed",
                "destroying",
                "pending_destroy",
            }:
                return str(volume["id"])
        body = volume_request(
            spec.session_id, spec.config.resource_limits.storage_bytes, self.settings.region
        )
        created = await self._request("POST", "/volumes", json=body, idempotent=False)
        return str(created["id"])

    async def create(self, spec: RunnerSpec) -> RunnerHandle:
        volume_id = await self._volume_for(spec)
        # a machine left by this session's previous runner holds the volume: it goes first
        for stale in await self._machines({LABEL_SESSION: spec.session_id}):
            log.info("destroying machine %s left by session %s", stale["id"], spec.session_id)
            await self._destroy(str(stale["id"]))
        body = machine_request(spec, self.settings, volume_id)
        try:
            machine = await self._request("POST", "/machines", json=body, idempotent=False)
        except ProviderUnavailable:
            raise
        except ProviderError as exc:
            raise RunnerStartError(f"Fly refused the machine: {exc}") from None
        machine_id = str(machine["id"])
        handle = RunnerHandle(
            provider=self.name,
            session_id=spec.session_id,
            agent_id=machine_id,
            endpoint=runner_endpoint(
                self.settings.app,
                machine_id,
                self.settings.runner_port,
                str(machine.get("private_ip") or ""),
            ),
            token=spec.control_token,
            extra={
                "machine": machine.get("name", ""),
                "volume": volume_id,
                "region": machine.get("region", self.settings.region),
                "instance_id": machine.get("instance_id", ""),
            },
        )
        try:
            started = time.monotonic()
            try:
                await self._wait(machine_id, "started", self.start_timeout)
            except TimeoutError:
                raise RunnerStartError(
                    f"the Fly machine {machine_id} did not start in {self.start_timeout:.0f} s"
                ) from None
            left = max(1.0, self.start_timeout - (time.monotonic() - started))
            try:
                await self.wait_ready(handle, left, poll=0.1)
            except TimeoutError as exc:
                raise RunnerStartError(
                    f"the runner on Fly machine {machine_id} did not become healthy"
                    + (f" ({exc})" if str(exc) else "")
                ) from None
        except BaseException:
            await asyncio.shield(self._destroy(machine_id))
            raise
        return handle

    def channel(self, handle: RunnerHandle, timeout: float = 10.0) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {handle.token}"} if handle.token else {}
        return httpx.AsyncClient(
            base_url=handle.endpoint,
            headers=headers,
            timeout=timeout,
            transport=self.runner_transport,
            verify=tls_context(),
        )

    # -- machine states ---------------------------------------------------------------------

    async def stop_machine(self, handle: RunnerHandle) -> None:
        """Stop the machine (kept, with its volume); ``start`` brings it back."""
        await self._request("POST", f"/machines/{handle.agent_id}/stop")
        await self._wait(handle.agent_id, "stopped", self.call_timeout)

    async def suspend(self, handle: RunnerHandle) -> None:
        """Suspend the machine to disk; ``start`` resumes it where it was."""
        await self._request("POST", f"/machines/{handle.agent_id}/suspend")
        await self._wait(handle.agent_id, "suspended", self.call_timeout)

    async def start(self, handle: RunnerHandle) -> None:
        """Start a stopped or suspended machine and wait until it is ``started``."""
        await self._request("POST", f"/machines/{handle.agent_id}/start")
        await self._wait(handle.agent_id, "started", self.start_timeout)

    async def destroy(self, handle: RunnerHandle) -> None:
        """Destroy the machine; the volume stays."""
        await self._destroy(handle.agent_id)

    async def _destroy(self, machine_id: str) -> None:
        try:
            await self._request("DELETE", f"/machines/{machine_id}", params={"force": "true"})
        except _Missing:
            pass

    async def stop(self, handle: RunnerHandle) -> None:
        """Ask the runner to shut down, then destroy the machine; the workspace stays."""
        if handle.endpoint and handle.token:
            try:
                async with self.channel(handle, timeout=3.0) as client:
                    await client.post("/shutdown")
            except httpx.HTTPError:
                pass
        await self._destroy(handle.agent_id)

    async def purge_workspace(self, session_id: str, handle: RunnerHandle | None = None) -> None:
        """Destroy the session's machine(s) and delete its workspace volume."""
        for machine in await self._machines({LABEL_SESSION: session_id}):
            await self._destroy(str(machine["id"]))
        if handle is not None:
            await self._destroy(handle.agent_id)
        name = volume_name(session_id)
        known = handle.extra.get("volume") if handle is not None else None
        volumes: list[dict[str, Any]] = await self._request("GET", "/volumes")
        for volume in volumes:
            if volume.get("name") == name or (known and volume.get("id") == known):
                try:
                    await self._request("DELETE", f"/volumes/{volume['id']}")
                except _Missing:
                    pass

    # -- inspecting -------------------------------------------------------------------------

    async def _machine(self, machine_id: str) -> dict[str, Any] | None:
        try:
            machine: dict[str, Any] = await self._request("GET", f"/machines/{machine_id}")
        except _Missing:
            return None
        return machine

    async def status(self, handle: RunnerHandle) -> RunnerStatus:
        machine = await self._machine(handle.agent_id)
        if machine is None or machine.get("state") in {"destroyed", "destroying"}:
            return RunnerStatus.MISSING
        if machine.get("state") in {"started", "created", "starting"}:
            return RunnerStatus.RUNNING
        return RunnerStatus.EXITED

    async def exit_reason(self, handle: RunnerHandle) -> str | None:
        machine = await self._machine(handle.agent_id)
        if machine is None:
            return "the Fly machine is gone (destroyed outside agcluster)"
        state = machine.get("state")
        if state in {"started", "created", "starting"}:
            return None
        for event in reversed(machine.get("events") or []):
            exit_event = ((event.get("request") or {}).get("exit_event")) or {}
            if exit_event:
                if exit_event.get("oom_killed"):
                    return "the Fly machine ran out of memory and was killed (out of memory)"
                return f"the Fly machine's runner exited with code {exit_event.get('exit_code')}"
        return f"the Fly machine is {state}"

    async def _machines(self, labels: dict[str, str]) -> list[dict[str, Any]]:
        params = {f"metadata.{k}": v for k, v in labels.items()}
        found: list[dict[str, Any]] = await self._request("GET", "/machines", params=params)
        # filtered here too: what comes back is what we asked for, whatever the API did
        return [
            m
            for m in found
            if m.get("state") not in {"destroyed", "destroying"}
            and all(
                ((m.get("config") or {}).get("metadata") or {}).get(k) == v
                for k, v in labels.items()
            )
        ]

    async def list_runners(self, labels: dict[str, str]) -> list[RunnerHandle]:
        handles = []
        for machine in await self._machines(labels):
            metadata = (machine.get("config") or {}).get("metadata") or {}
            session_id = metadata.get(LABEL_SESSION)
            if not session_id:
                continue
            mounts = (machine.get("config") or {}).get("mounts") or [{}]
            handles.append(
                RunnerHandle(
                    provider=self.name,
                    session_id=session_id,
                    agent_id=str(machine["id"]),
                    endpoint=runner_endpoint(
                        self.settings.app,
                        str(machine["id"]),
                        self.settings.runner_port,
                        str(machine.get("private_ip") or ""),
                    ),
                    extra={
                        "machine": machine.get("name", ""),
                        "volume": mounts[0].get("volume", ""),
                        "region": machine.get("region", ""),
                        "state": machine.get("state"),
                    },
                )
            )
        return handles

    async def close(self) -> None:
        await self._client.aclose()


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if isinstance(body, dict) and body.get("error"):
        return str(body["error"])
    return response.reason_phrase
