"""The Docker Engine connection: where the engine is, whether it answers, what its errors
mean, and one bounded, retried way to call it.

Both users of the engine go through here: the ``docker`` provider (:class:`DockerEngine`
runs its SDK calls) and ``jupyter agcluster build-image`` (:func:`connect`).

Errors, as :func:`classify_error` sorts the SDK's::

    EngineMissing        the container or image is not there (404)
    EngineTransient      worth another try: refused, a timeout, a 5xx; ``unreachable``
                         when the engine itself did not answer
    ProviderError        the engine refused, for good (a 4xx, an OCI runtime failure)
    DockerUnreachable    (connect only) no engine answered a ping

The ``docker`` SDK is synchronous, so :class:`DockerEngine` runs every call in its own
thread pool (a slow engine never blocks the event loop nor starves the default executor
the file handlers use), under a timeout; calls that are safe to repeat are retried a
bounded number of times with exponential backoff, on transient errors only.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import importlib
import logging
import os
import socket
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

from .base import ProviderError, ProviderUnavailable

__all__ = [
    "DEFAULT_DOCKER_HOST",
    "DockerEngine",
    "DockerUnreachable",
    "EngineMissing",
    "EngineTransient",
    "classify_error",
    "connect",
    "docker_host",
    "docker_sdk",
    "os_reason",
    "ping_engine",
    "probe_socket",
    "unreachable_message",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"


class DockerUnreachable(Exception):
    """The Docker engine did not answer; ``str()`` is the one-line message for users."""


class EngineMissing(Exception):
    """The container (or image) is not there: docker's 404."""


class EngineTransient(Exception):
    """A failure worth another try (the engine busy, restarting or slow)."""

    def __init__(self, message: str, unreachable: bool) -> None:
        super().__init__(message)
        self.unreachable = unreachable


def docker_sdk(module: str = "docker") -> Any:
    """The docker SDK (untyped; imported by name so mypy never takes the checkout's
    ``docker/`` folder for it), loaded on first use."""
    return importlib.import_module(module)


def docker_host() -> str:
    """Where the Docker SDK looks for the engine: ``$DOCKER_HOST`` or the default socket."""
    return os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST


def os_reason(exc: BaseException) -> str | None:
    """The first OS-level reason (``strerror``) in an exception's causes and arguments.

    The Docker SDK wraps the socket error two or three times (requests, urllib3); this
    digs out "No such file or directory", "Permission denied", "Connection refused".
    """
    seen: set[int] = set()
    queue: deque[BaseException] = deque([exc])
    while queue:
        current = queue.popleft()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and isinstance(current.strerror, str) and current.strerror:
            return current.strerror
        queue.extend(arg for arg in current.args if isinstance(arg, BaseException))
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                queue.append(linked)
    return None


def unreachable_message(exc: BaseException, host: str | None = None) -> str:
    """One line naming the engine's address, the reason, and what to do about it."""
    host = host or docker_host()
    reason = os_reason(exc) or " ".join(str(exc).split()) or type(exc).__name__
    hint = "start dockerd or set DOCKER_HOST"
    if "permission denied" in reason.lower():
        hint = "run as root or join the docker group, or set DOCKER_HOST"
    return f"cannot reach Docker at {host}: {reason}; {hint}"


def probe_socket(timeout: float) -> None:
    """Connect to a ``unix://`` engine socket once; OSError when nothing listens.

    The SDK leaks the socket of a failed connect (a ResourceWarning), and a missing or
    dead socket is the common failure: find it out without the SDK.
    """
    host = docker_host()
    if host.startswith("unix://"):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(host.removeprefix("unix://"))


def connect(timeout: float = 15) -> Any:
    """A ``docker.DockerClient`` whose engine answered a ping, else :class:`DockerUnreachable`."""
    try:
        probe_socket(timeout)
        client = docker_sdk().from_env(timeout=timeout)
        client.ping()
    except Exception as exc:  # the SDK raises DockerException and requests' errors alike
        raise DockerUnreachable(unreachable_message(exc)) from exc
    return client


def ping_engine(timeout: float = 2.0) -> str | None:
    """None when the engine answers a ping within ``timeout``, else why not (one line)."""
    try:
        connect(timeout).close()
    except DockerUnreachable as exc:
        return str(exc)
    return None


def classify_error(exc: BaseException) -> BaseException:
    """The engine's error as ``EngineTransient`` (retry), ``EngineMissing`` (404),
    ``ProviderError`` (give up at once), or as it is."""
    errors = docker_sdk("docker.errors")
    requests_errors = docker_sdk("requests.exceptions")
    if isinstance(exc, errors.NotFound):
        return EngineMissing(str(exc))
    if isinstance(exc, requests_errors.Timeout):
        return EngineTransient(f"Docker at {docker_host()} did not answer in time", True)
    if isinstance(exc, (requests_errors.ConnectionError, ConnectionError, FileNotFoundError)):
        return EngineTransient(unreachable_message(exc), unreachable=True)
    if isinstance(exc, errors.APIError):
        status = exc.status_code or 0
        if status >= 500 and "OCI runtime" not in str(exc):
            return EngineTransient(f"the Docker engine failed: {exc.explanation or exc}", False)
        return ProviderError(f"Docker: {exc.explanation or exc}")
    if isinstance(exc, errors.DockerException):
        # the client could not even be made: no engine behind DOCKER_HOST
        return EngineTransient(unreachable_message(exc), unreachable=True)
    if isinstance(exc, OSError):
        # the socket probe: refused, missing, permission denied (last: the SDK's own
        # errors are OSErrors too)
        return EngineTransient(unreachable_message(exc), unreachable=True)
    return exc


class DockerEngine:
    """One SDK client, made on first use and dropped when the engine stops answering,
    and :meth:`call` to run ``fn(client, ...)`` in this engine's own thread pool."""

    def __init__(
        self,
        *,
        call_timeout: float = 30.0,
        retries: int = 3,
        client_factory: Callable[[], Any] | None = None,
        max_workers: int = 8,
    ) -> None:
        self.call_timeout = call_timeout
        self.retries = retries
        self._client_factory = client_factory
        self._client: Any = None
        self._client_lock = threading.Lock()
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix="agcluster-docker"
        )

    def client(self) -> Any:
        """The SDK client, made on first use (making one asks the engine for its version)."""
        with self._client_lock:
            if self._client is None:
                if self._client_factory is not None:
                    self._client = self._client_factory()
                else:
                    probe_socket(self.call_timeout)
                    self._client = docker_sdk().from_env(timeout=int(self.call_timeout))
            return self._client

    def drop_client(self) -> None:
        with self._client_lock:
            client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception:  # noqa: BLE001 - it is being thrown away
                pass

    async def call(
        self,
        fn: Callable[..., T],
        *args: Any,
        retry: bool = True,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> T:
        """``fn(client, *args, **kwargs)`` in the pool, bounded; transient errors retried.

        Raises ``ProviderUnavailable`` when the engine cannot be reached,
        ``EngineMissing`` for a 404, ``ProviderError`` for the rest of its refusals.
        """
        loop = asyncio.get_running_loop()
        attempts = 1 + (self.retries if retry else 0)
        delay = 0.1
        limit = timeout or self.call_timeout + 5
        for attempt in range(1, attempts + 1):
            try:
                job = functools.partial(self._invoke, fn, args, kwargs)
                return await asyncio.wait_for(loop.run_in_executor(self._executor, job), limit)
            except asyncio.TimeoutError:
                failure = EngineTransient(
                    f"Docker at {docker_host()} did not answer within {limit:.0f} s",
                    unreachable=True,
                )
            except EngineTransient as exc:
                failure = exc
            if failure.unreachable:
                self.drop_client()
            if attempt == attempts:
                if failure.unreachable:
                    raise ProviderUnavailable(str(failure)) from None
                raise ProviderError(str(failure)) from None
            log.debug("docker: %s; retrying in %.1f s", failure, delay)
            await asyncio.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")  # pragma: no cover

    def _invoke(self, fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
        try:
            return fn(self.client(), *args, **kwargs)
        except Exception as exc:
            classified = classify_error(exc)
            if classified is exc:
                raise
            raise classified from exc

    async def close(self) -> None:
        await asyncio.to_thread(self.drop_client)
        self._executor.shutdown(wait=False, cancel_futures=True)
