"""The ``docker`` provider: one hardened container per session, on the local engine.

The container spec comes from :mod:`.docker_spec` (pure functions); the engine is called
through :class:`.docker_engine.DockerEngine` (its own thread pool, every call under a
timeout, transient errors retried with bounded exponential backoff); this module is the
session lifecycle on top of the two.

The runner is reached over the unix socket it binds in the session's socket folder,
which is bind-mounted into the container; the gateway's socket sits next to it.
Readiness is the runner's own ``/health`` over that socket, polled every 20 ms: no fixed
sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx

from .._version import __version__
from ..errors import BadRequest
from .base import (
    LABEL_SESSION,
    Provider,
    ProviderError,
    ProviderHealth,
    ProviderUnavailable,
    RunnerFault,
    RunnerHandle,
    RunnerSpec,
    RunnerStartError,
    RunnerStatus,
)
from .docker_engine import DockerEngine, EngineMissing, docker_host
from .docker_spec import (
    RUNNER_SOCKET,
    SOCKET_MOUNT,
    ContainerSettings,
    container_kwargs,
    container_name,
    exit_reason,
    image_problem,
    stats_summary,
)

__all__ = ["DockerProvider"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: resources() answers from a sample at most this old (a panel may poll details often)
STATS_MAX_AGE = 2.0


def _fix_ownership(path: Path, uid: int, gid: int, mode: int | None = None) -> None:
    """``path`` (and everything under it) owned by the container's uid:gid.

    Only entries owned by someone else are touched, so a second launch is a cheap walk.
    Symlinks are changed themselves, never followed.
    """
    path.mkdir(parents=True, exist_ok=True)
    if mode is not None:
        path.chmod(mode)
    st = path.lstat()
    if (st.st_uid, st.st_gid) != (uid, gid):
        os.chown(path, uid, gid, follow_symlinks=False)
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            try:
                st = os.lstat(full)
                if (st.st_uid, st.st_gid) != (uid, gid):
                    os.chown(full, uid, gid, follow_symlinks=False)
            except FileNotFoundError:
                continue


class DockerProvider(Provider):
    name = "docker"
    isolated = True
    workspace_mount = "/workspace"

    def __init__(
        self,
        settings: ContainerSettings,
        *,
        start_timeout: float = 60.0,
        call_timeout: float = 30.0,
        retries: int = 3,
        version: str = __version__,
        client_factory: Callable[[], Any] | None = None,
        max_workers: int = 8,
    ) -> None:
        self.settings = settings
        self.start_timeout = start_timeout
        self.call_timeout = call_timeout
        self.retries = retries
        self.version = version
        self.engine = DockerEngine(
            call_timeout=call_timeout,
            retries=retries,
            client_factory=client_factory,
            max_workers=max_workers,
        )
        self._call = self.engine.call
        #: per container: (when, summary) of the last stats sample, its raw CPU counters,
        #: and the sample being taken
        self._stats: dict[str, tuple[float, dict[str, Any]]] = {}
        self._raw_cpu: dict[str, dict[str, Any]] = {}
        self._sampling: dict[str, asyncio.Future[dict[str, Any]]] = {}
        #: newest OOM event reported per container (its timeNano), so none is told twice
        self._oom_seen: dict[str, int] = {}

    # -- health -------------------------------------------------------------------------

    async def _problem(self) -> tuple[str | None, bool]:
        """What keeps this provider from starting runners (None if nothing), and whether
        it is the engine (True) rather than the image."""
        try:
            await self._call(lambda c: c.ping(), timeout=10.0, retry=False)
        except ProviderUnavailable as exc:
            return str(exc), True
        except ProviderError as exc:
            return f"the Docker engine at {docker_host()} is unhealthy: {exc}", True
        try:
            attrs = await self._call(lambda c: c.api.inspect_image(self.settings.image))
            labels: dict[str, str] | None = (attrs.get("Config") or {}).get("Labels") or {}
        except EngineMissing:
            labels = None
        except ProviderError as exc:
            return str(exc), True
        return image_problem(self.settings.image, labels, self.version), False

    async def health(self) -> ProviderHealth:
        problem, _ = await self._problem()
        if problem:
            return ProviderHealth(ok=False, isolated=True, detail=problem)
        return ProviderHealth(
            ok=True,
            isolated=True,
            detail=f"Docker at {docker_host()}, image {self.settings.image}",
        )

    # -- create ---------------------------------------------------------------------------

    def check_folder(self, folder: Path) -> None:
        if os.geteuid() == 0 and folder.stat().st_uid == 0:
            raise BadRequest(
                "the folder belongs to root, and an agent never runs as root: give the "
                "folder to the user whose work it is (the agent then writes as that user)",
                field="workspace",
            )

    def agent_ids(self, spec: RunnerSpec) -> tuple[int, int]:
        """The uid:gid the agent's tools run as: the Jupyter user's (an unprivileged one
        when Jupyter runs as root); in a folder workspace of a root server, the folder
        owner's, so what the agent writes there is the user's."""
        if spec.folder_workspace and os.geteuid() == 0:
            st = spec.workspace.stat()
            return st.st_uid, st.st_gid
        return self.settings.uid, self.settings.gid

    def _prepare_folders(self, spec: RunnerSpec) -> None:
        uid, gid = self.agent_ids(spec)
        if not spec.workspace.is_dir():
            raise RunnerStartError(f"the workspace {spec.workspace} is not a folder")
        # the agent writes as uid:gid, so its files belong to the Jupyter user (or to an
        # unprivileged user when Jupyter runs as root); a folder of the user's tree is
        # never chowned
        if not spec.folder_workspace:
            _fix_ownership(spec.workspace, uid, gid)
        _fix_ownership(spec.state_dir, uid, gid, mode=0o700)
        # the server's own (0700): the gateway's socket (0666) is in it, and the root
        # runner makes its own folder in it for its socket (RUNNER_SOCKET), left as it is
        spec.socket_dir.mkdir(parents=True, exist_ok=True)
        spec.socket_dir.chmod(0o700)
        with contextlib.suppress(OSError):  # root's, when the server is not: the runner
            (spec.socket_dir / RUNNER_SOCKET).unlink(missing_ok=True)  # rebinds it anyway

    async def create(self, spec: RunnerSpec) -> RunnerHandle:
        problem, _ = await self._problem()
        if problem:
            raise ProviderUnavailable(problem)
        await asyncio.to_thread(self._prepare_folders, spec)
        name = container_name(spec.session_id)
        await self._remove_stale(name, spec.session_id)
        uid, gid = self.agent_ids(spec)
        kwargs = container_kwargs(spec, dataclasses.replace(self.settings, uid=uid, gid=gid))
        try:
            container_id: str = await self._call(
                lambda c: c.containers.create(**kwargs).id, retry=False
            )
        except ProviderUnavailable:
            raise
        except (ProviderError, EngineMissing) as exc:
            raise RunnerStartError(f"Docker refused the container: {exc}") from None
        handle = RunnerHandle(
            provider=self.name,
            session_id=spec.session_id,
            agent_id=container_id,
            endpoint=f"unix:{spec.socket_dir / RUNNER_SOCKET}",
            token=spec.control_token,
            extra={"container": name, "memory": spec.config.resource_limits.memory},
        )
        try:
            try:
                await self._call(lambda c: c.api.start(container_id), retry=False)
            except ProviderUnavailable:
                raise
            except (ProviderError, EngineMissing) as exc:
                hint = ""
                if "bind source path does not exist" in str(exc):
                    # the engine resolves bind mounts on ITS host: a server in a container
                    hint = (
                        "; the Docker engine cannot see that folder: when Jupyter runs in "
                        "a container, workspace_root, agent_state_root and socket_root "
                        "must be host folders mounted at the same path"
                    )
                raise RunnerStartError(
                    f"Docker could not start the container: {exc}{hint}"
                ) from None
            await self._wait_healthy(handle)
        except BaseException:
            await asyncio.shield(self._remove(container_id))
            raise
        return handle

    async def _remove_stale(self, name: str, session_id: str) -> None:
        """A container left by this session's previous runner (same name) goes first."""
        try:
            attrs = await self._call(lambda c: c.api.inspect_container(name))
        except EngineMissing:
            return
        owner = ((attrs.get("Config") or {}).get("Labels") or {}).get(LABEL_SESSION)
        if owner != session_id:
            raise RunnerStartError(
                f"a container named {name} exists and is not this session's; remove it "
                f"(docker rm -f {name})"
            )
        log.info("removing %s left by a previous runner of session %s", name, session_id)
        await self._remove(attrs["Id"])

    async def _wait_healthy(self, handle: RunnerHandle) -> None:
        async def alive() -> None:
            # a container that died never answers: say why at once, not at the end
            state = await self._state(handle.agent_id)
            if state is not None and not state.get("Running"):
                raise RunnerStartError(await self._exit_reason(handle, state))

        try:
            await self.wait_ready(handle, self.start_timeout, poll=0.02, check_alive=alive)
        except TimeoutError as exc:
            logs = await self._logs(handle.agent_id)
            detail = str(exc)
            raise RunnerStartError(
                f"the runner did not become healthy in {self.start_timeout:.0f} s"
                + (f" ({detail})" if detail else "")
                + (f"; its last output: {logs}" if logs else "")
            ) from None

    # -- inspecting ---------------------------------------------------------------------------

    async def _state(self, container_id: str) -> dict[str, Any] | None:
        try:
            attrs = await self._call(lambda c: c.api.inspect_container(container_id))
        except EngineMissing:
            return None
        state: dict[str, Any] = attrs.get("State") or {}
        return state

    async def _logs(self, container_id: str, lines: int = 10) -> str:
        try:
            raw: bytes = await self._call(
                lambda c: c.api.logs(container_id, tail=lines, stdout=True, stderr=True)
            )
        except (EngineMissing, ProviderError):
            return ""
        return raw.decode("utf-8", "replace").strip()

    async def _exit_reason(self, handle: RunnerHandle, state: dict[str, Any]) -> str:
        memory = str(handle.extra.get("memory") or "")
        return exit_reason(state, memory, await self._logs(handle.agent_id))

    async def exit_reason(self, handle: RunnerHandle) -> str | None:
        state = await self._state(handle.agent_id)
        if state is None:
            return "the agent container is gone (removed outside agcluster)"
        if state.get("Running"):
            return None
        return await self._exit_reason(handle, state)

    async def faults(self, handle: RunnerHandle, since: float) -> list[RunnerFault]:
        """Processes of the container the kernel killed for memory since ``since``."""
        container_id = handle.agent_id

        def oom_events(client: Any) -> list[dict[str, Any]]:
            stream = client.api.events(
                since=int(since) - 1,
                # now, not later: the engine holds the stream open until ``until``
                until=f"{time.time():.6f}",
                filters={"container": container_id, "event": "oom"},
                decode=True,
            )
            try:
                return list(stream)
            finally:
                stream.close()

        events = await self._call(oom_events, timeout=10.0)
        seen = self._oom_seen.get(container_id, 0)
        new = [e for e in events if int(e.get("timeNano") or 0) > seen]
        if not new:
            return []
        self._oom_seen[container_id] = max(int(e.get("timeNano") or 0) for e in new)
        memory = str(handle.extra.get("memory") or "") or "its"
        times = "once" if len(new) == 1 else f"{len(new)} times"
        return [
            RunnerFault(
                code="out_of_memory",
                message=(
                    f"out of memory: the kernel killed a process in the agent's container "
                    f"({times}) at the {memory} memory limit; raise resource_limits.memory "
                    "or use less"
                ),
            )
        ]

    async def status(self, handle: RunnerHandle) -> RunnerStatus:
        state = await self._state(handle.agent_id)
        if state is None:
            return RunnerStatus.MISSING
        return RunnerStatus.RUNNING if state.get("Running") else RunnerStatus.EXITED

    async def list_runners(self, labels: dict[str, str]) -> list[RunnerHandle]:
        filters = {"label": [f"{k}={v}" for k, v in labels.items()] or [LABEL_SESSION]}
        found: list[dict[str, Any]] = await self._call(
            lambda c: c.api.containers(all=True, filters=filters)
        )
        handles = []
        for item in found:
            item_labels = item.get("Labels") or {}
            session_id = item_labels.get(LABEL_SESSION)
            if not session_id:
                continue
            socket_dir = next(
                (
                    m.get("Source")
                    for m in item.get("Mounts") or []
                    if m.get("Destination") == SOCKET_MOUNT
                ),
                None,
            )
            endpoint = f"unix:{socket_dir}/{RUNNER_SOCKET}" if socket_dir else ""
            names = item.get("Names") or [""]
            handles.append(
                RunnerHandle(
                    provider=self.name,
                    session_id=session_id,
                    agent_id=item["Id"],
                    endpoint=endpoint,
                    extra={"container": names[0].lstrip("/"), "state": item.get("State")},
                )
            )
        return handles

    async def resources(self, handle: RunnerHandle) -> dict[str, Any]:
        """The latest stats sample, refreshed in the background when older than
        ``STATS_MAX_AGE``: a details request waits for the engine only the first time.

        Samples are one-shot (the engine answers at once instead of collecting two
        samples a second apart); CPU % is the use between this sample and the last.
        """
        container_id = handle.agent_id
        entry = self._stats.get(container_id)
        if entry is not None and time.monotonic() - entry[0] < STATS_MAX_AGE:
            return entry[1]
        task = self._sampling.get(container_id)
        if task is None or task.done():
            task = asyncio.ensure_future(self._sample(container_id))
            # a failed background refresh nobody awaits is not an "unretrieved" error
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
            self._sampling[container_id] = task
        if entry is not None:
            return entry[1]  # a little old; the next request gets the fresh one
        return await asyncio.shield(task)

    async def _sample(self, container_id: str) -> dict[str, Any]:
        stats: dict[str, Any] = await self._call(
            lambda c: c.api.stats(container_id, stream=False, one_shot=True), retry=False
        )
        previous = self._raw_cpu.get(container_id)
        if previous is not None:
            stats = {**stats, "precpu_stats": previous}
        self._raw_cpu[container_id] = stats.get("cpu_stats") or {}
        summary = stats_summary(stats)
        self._stats[container_id] = (time.monotonic(), summary)
        return summary

    # -- stop -------------------------------------------------------------------------------

    async def stop(self, handle: RunnerHandle) -> None:
        """Ask the runner to shut down, then stop and remove the container (gone is fine)."""
        if handle.endpoint:
            try:
                async with self.channel(handle, timeout=3.0) as client:
                    await client.post("/shutdown")
            except httpx.HTTPError:
                pass
            # the runner ends its turn and closes the CLI, then the container exits
            deadline = time.monotonic() + 5.0
            while time.monotonic() < deadline:
                try:
                    state = await self._state(handle.agent_id)
                except ProviderError:
                    break
                if state is None or not state.get("Running"):
                    break
                await asyncio.sleep(0.05)
        await self._remove(handle.agent_id)

    async def _remove(self, container_id: str) -> None:
        self._stats.pop(container_id, None)
        self._raw_cpu.pop(container_id, None)
        self._sampling.pop(container_id, None)
        self._oom_seen.pop(container_id, None)
        try:
            await self._call(lambda c: c.api.stop(container_id, timeout=5), timeout=30.0)
        except EngineMissing:
            return
        except ProviderUnavailable:
            raise
        except ProviderError as exc:
            log.warning("docker stop %s: %s", container_id[:12], exc)
        try:
            await self._call(lambda c: c.api.remove_container(container_id, force=True))
        except EngineMissing:
            pass
        except ProviderUnavailable:
            raise
        except ProviderError as exc:
            if "already in progress" not in str(exc):
                raise ProviderError(
                    f"could not remove container {container_id[:12]}: {exc}"
                ) from None

    async def close(self) -> None:
        await self.engine.close()
