"""The kubernetes provider: a Pod per session, a PVC per workspace, a NetworkPolicy.

Specs come from :mod:`.kubernetes_spec` (pure, tested as data); this module only talks
to the API server through lightkube's async client.  Every call runs under a timeout
with bounded exponential-backoff retries (on transport errors, 429 and 5xx).  Readiness
is watch-based: the pod's ``Ready`` condition, then the runner's own ``/health`` over
TCP with the per-session bearer token (kept in a per-session Secret).  ``stop`` deletes
the pod, its Secret and its policy; the workspace PVC stays until ``purge_workspace``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx2
from lightkube import ApiError, AsyncClient, KubeConfig
from lightkube.codecs import from_dict
from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources.core_v1 import PersistentVolumeClaim, Pod, Secret
from lightkube.resources.networking_v1 import NetworkPolicy

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
)
from .kubernetes_spec import (
    ANNOTATION_PREFIX,
    PodSettings,
    label_selector,
    metrics_summary,
    network_policy_spec,
    pod_name,
    pod_spec,
    pvc_name,
    pvc_spec,
    secret_name,
    secret_spec,
)

__all__ = ["KubernetesProvider"]

#: the metrics-server's view of a pod (``kubectl top pod``)
PodMetrics = create_namespaced_resource("metrics.k8s.io", "v1beta1", "PodMetrics", "pods")
#: seconds a resources() call may wait for the metrics API (best effort, no retries)
METRICS_TIMEOUT = 3.0

T = TypeVar("T")
_RETRY_CODES = {429, 500, 502, 503, 504}


def _code(exc: ApiError) -> int:
    return int(getattr(exc.status, "code", 0) or 0)


class KubernetesProvider(Provider):
    name = "kubernetes"
    isolated = True
    workspace_mount = "/workspace"
    remote = True

    def __init__(
        self,
        settings: PodSettings,
        *,
        namespace: str = "default",
        config: KubeConfig | None = None,
        call_timeout: float = 10.0,
        retries: int = 4,
        backoff: float = 0.2,
        max_backoff: float = 5.0,
        start_timeout: float = 180.0,
    ) -> None:
        self.settings = settings
        self.namespace = namespace
        self._config = config
        self.call_timeout = call_timeout
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.start_timeout = start_timeout
        self._client: AsyncClient | None = None

    # -- plumbing -------------------------------------------------------------------------

    def client(self) -> AsyncClient:
        if self._client is None:
            try:
                config = self._config or KubeConfig.from_env()
            except Exception as exc:
                raise ProviderUnavailable(
                    f"no Kubernetes configuration found ({exc}); run the server in a pod "
                    "with a service account, or set KUBECONFIG"
                ) from exc
            self._client = AsyncClient(
                config=config,
                namespace=self.namespace,
                timeout=httpx2.Timeout(self.call_timeout),
                field_manager="agcluster-jupyter",
            )
        return self._client

    async def _call(self, what: str, fn: Callable[[AsyncClient], Awaitable[T]]) -> T:
        """``fn(client)`` under a timeout, retried with bounded backoff on transient errors."""
        delay = self.backoff
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                return await asyncio.wait_for(fn(self.client()), self.call_timeout)
            except ApiError as exc:
                if _code(exc) not in _RETRY_CODES or last:
                    raise
            except (httpx2.TransportError, asyncio.TimeoutError, OSError) as exc:
                if last:
                    raise ProviderUnavailable(
                        f"the Kubernetes API did not answer {what} ({type(exc).__name__}: "
                        f"{exc}); check the cluster and the server's kubeconfig"
                    ) from exc
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.max_backoff)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _create(self, what: str, body: dict[str, Any]) -> None:
        obj = from_dict(body)
        await self._call(f"create {what}", lambda c: c.create(obj))

    async def _delete(self, kind: Any, name: str) -> bool:
        """Delete ``name``; False when it was not there."""
        try:
            await self._call(
                f"delete {name}", lambda c: c.delete(kind, name, namespace=self.namespace)
            )
        except ApiError as exc:
            if _code(exc) == 404:
                return False
            raise ProviderError(f"could not delete {name}: {exc}") from exc
        return True

    # -- the interface --------------------------------------------------------------------

    async def health(self) -> ProviderHealth:
        try:
            await self._call(
                "list pods",
                lambda c: _first(c.list(Pod, namespace=self.namespace, chunk_size=1)),
            )
        except (ProviderError, ApiError) as exc:
            return ProviderHealth(ok=False, isolated=True, detail=str(exc))
        return ProviderHealth(ok=True, isolated=True, detail=f"namespace {self.namespace}")

    async def create(self, spec: RunnerSpec) -> RunnerHandle:
        sid = spec.session_id
        try:
            await self._delete(Secret, secret_name(sid))  # a stale one from a crash
            await self._create("secret", secret_spec(spec))
            try:
                await self._create("workspace volume claim", pvc_spec(spec, self.settings))
            except ApiError as exc:
                if _code(exc) != 409:  # 409: the workspace is already there; keep it
                    raise
            await self._delete(NetworkPolicy, pod_name(sid))
            await self._create("network policy", network_policy_spec(spec, self.settings))
            await self._create("pod", pod_spec(spec, self.settings))
        except ApiError as exc:
            await self._cleanup(sid)
            raise ProviderError(f"Kubernetes refused the session's objects: {exc}") from exc
        except ProviderError:
            await self._cleanup(sid)
            raise
        handle = RunnerHandle(
            provider=self.name,
            session_id=sid,
            agent_id=pod_name(sid),
            endpoint="",
            token=spec.control_token,
            extra={
                "namespace": self.namespace,
                "pvc": pvc_name(sid),
                "memory_limit_bytes": spec.config.resource_limits.memory_bytes,
            },
        )
        deadline = time.monotonic() + self.start_timeout
        try:
            ip = await self._wait_pod_ready(pod_name(sid), self.start_timeout)
            handle.endpoint = f"http://{ip}:{self.settings.port}"

            async def alive() -> None:
                if await self.status(handle) is not RunnerStatus.RUNNING:
                    raise RunnerStartError(f"the pod {handle.agent_id} stopped while starting")

            await self.wait_ready(
                handle, max(deadline - time.monotonic(), 1.0), poll=0.1, check_alive=alive
            )
        except (TimeoutError, asyncio.TimeoutError) as exc:
            await self._cleanup(sid)
            raise RunnerStartError(
                f"the pod {handle.agent_id} was not ready within {self.start_timeout:.0f} s "
                f"{exc}".rstrip()
            ) from exc
        except ProviderError:
            await self._cleanup(sid)
            raise
        return handle

    async def _wait_pod_ready(self, name: str, timeout: float) -> str:
        """Watch the pod until it is Ready (its IP) or finished (RunnerStartError)."""

        async def watch() -> str:
            stream = self.client().watch(
                Pod, namespace=self.namespace, fields={"metadata.name": name}
            )
            async for kind, pod in stream:
                if kind == "DELETED":
                    raise RunnerStartError(f"the pod {name} was deleted while starting")
                status = pod.status
                if status is None:
                    continue
                if status.phase in {"Failed", "Succeeded"}:
                    raise RunnerStartError(f"the pod {name} {_why(pod)}")
                ready = any(
                    c.type == "Ready" and c.status == "True" for c in status.conditions or []
                )
                if ready and status.podIP:
                    return str(status.podIP)
            raise RunnerStartError(f"the watch on pod {name} ended before it was ready")

        return await asyncio.wait_for(watch(), timeout)

    async def _cleanup(self, session_id: str) -> None:
        for kind, name in (
            (Pod, pod_name(session_id)),
            (NetworkPolicy, pod_name(session_id)),
            (Secret, secret_name(session_id)),
        ):
            try:
                await self._delete(kind, name)
            except ProviderError:
                pass  # best effort; the orphan sweep finds it by label

    async def stop(self, handle: RunnerHandle) -> None:
        await self._cleanup(handle.session_id)

    async def purge_workspace(self, session_id: str, handle: RunnerHandle | None = None) -> None:
        """Delete the workspace PVC of ``session_id`` (after ``stop``)."""
        await self._cleanup(session_id)
        await self._delete(PersistentVolumeClaim, pvc_name(session_id))

    async def status(self, handle: RunnerHandle) -> RunnerStatus:
        try:
            pod = await self._call(
                "get pod",
                lambda c: c.get(Pod, handle.agent_id, namespace=self.namespace),
            )
        except ApiError as exc:
            if _code(exc) == 404:
                return RunnerStatus.MISSING
            raise ProviderError(f"could not read pod {handle.agent_id}: {exc}") from exc
        phase = pod.status.phase if pod.status else None
        return RunnerStatus.RUNNING if phase in {"Pending", "Running"} else RunnerStatus.EXITED

    async def resources(self, handle: RunnerHandle) -> dict[str, Any]:
        """CPU and memory from the cluster's metrics API (metrics-server); ``{}`` when the
        cluster has none or the pod has no sample yet."""
        try:
            metrics = await asyncio.wait_for(
                self.client().get(PodMetrics, handle.agent_id, namespace=self.namespace),
                METRICS_TIMEOUT,
            )
            # a generic resource is a dict of the object's JSON
            return metrics_summary(dict(metrics), int(handle.extra.get("memory_limit_bytes") or 0))
        except (ApiError, httpx2.HTTPError, asyncio.TimeoutError, OSError, ValueError):
            return {}

    async def exit_reason(self, handle: RunnerHandle) -> str | None:
        try:
            pod = await self._call(
                "get pod", lambda c: c.get(Pod, handle.agent_id, namespace=self.namespace)
            )
        except ApiError:
            return None
        return f"the agent pod {_why(pod)}"

    async def list_runners(self, labels: dict[str, str]) -> list[RunnerHandle]:
        selector: dict[str, Any] = dict(label_selector(labels)) if labels else {LABEL_SESSION: None}

        async def collect(c: AsyncClient) -> list[Any]:
            return [p async for p in c.list(Pod, namespace=self.namespace, labels=selector)]

        pods = await self._call("list pods", collect)
        handles = []
        for pod in pods:
            meta = pod.metadata
            annotations = (meta.annotations if meta else None) or {}
            session_id = annotations.get(ANNOTATION_PREFIX + "session-id")
            if not session_id or meta is None or not meta.name:
                continue
            ip = pod.status.podIP if pod.status else None
            handles.append(
                RunnerHandle(
                    provider=self.name,
                    session_id=session_id,
                    agent_id=meta.name,
                    endpoint=f"http://{ip}:{self.settings.port}" if ip else "",
                    # the token is the server's (its session record), not the cluster's
                    extra={
                        "namespace": self.namespace,
                        "pvc": pvc_name(session_id),
                        "state": pod.status.phase if pod.status else None,
                    },
                )
            )
        return handles

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


async def _first(items: Any) -> None:
    async for _ in items:
        break


def _why(pod: Any) -> str:
    status = pod.status
    phase = status.phase if status else "gone"
    for container in (status.containerStatuses if status else None) or []:
        term = container.state.terminated if container.state else None
        if term is not None:
            if term.reason == "OOMKilled":
                return "ran out of memory and was killed (out of memory)"
            detail = f": {term.message.strip()[-500:]}" if term.message else ""
            return f"exited with code {term.exitCode} ({term.reason or phase}){detail}"
    message = f": {status.message}" if status and status.message else ""
    return f"is {phase}{message}"
