"""A typed, synchronous client for the agcluster REST API, as a kernel uses it.

``AgClusterClient.discover()`` finds the Jupyter server the kernel runs under, so a
session started from a notebook is the same session the JupyterLab panel shows:

1. ``JUPYTER_SERVER_URL`` (+ ``JUPYTER_TOKEN``) in the environment;
2. JupyterHub's single-user environment: ``JUPYTERHUB_SERVICE_URL`` (or the runtime
   file's host with ``JUPYTERHUB_SERVICE_PREFIX``) and ``JUPYTERHUB_API_TOKEN``;
3. the servers' runtime files (``list_running_servers()``): the one whose pid is the
   kernel's parent, else the one whose ``root_dir`` holds the kernel's notebook
   (``JPY_SESSION_NAME``) or working directory, deepest root first.

``AgClusterClient(url, token)`` skips all that.  Every failure is an
``AgClusterClientError`` with a one-line message: ``ServerNotFound`` when no server can
be found or reached, ``ApiError`` for an HTTP error answer.

Size: one method per REST call, a typed mirror of ``openapi.yaml``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import ValidationError

from ..errors import first_line
from ..events import Event, parse_event

__all__ = [
    "AgClusterClient",
    "AgClusterClientError",
    "ApiError",
    "ServerInfo",
    "ServerNotFound",
    "find_server",
    "iter_sse",
]

#: SSE read timeout: the server sends a heartbeat comment every 15 s while idle
_STREAM_READ_TIMEOUT = 60.0
#: how often a dropped turn stream is re-opened from the last event before giving up
_RECONNECTS = 5


class AgClusterClientError(Exception):
    """Anything the client cannot do; ``str()`` is one line meant for the user."""


class ServerNotFound(AgClusterClientError):
    """No Jupyter server with agcluster could be found or reached."""


class ApiError(AgClusterClientError):
    """The server answered with an HTTP error."""

    def __init__(self, status: int, message: str, reason: str = "", field: str = "") -> None:
        super().__init__(f"agcluster error {status}: {message}")
        self.status = status
        self.message = message
        self.reason = reason
        self.field = field


# ---------------------------------------------------------------- finding the server


@dataclass(frozen=True)
class ServerInfo:
    """Where the Jupyter server is: ``url`` ends with its base URL and a slash."""

    url: str
    token: str
    source: str  # how it was found, for messages


def _slash(url: str) -> str:
    return url if url.endswith("/") else url + "/"


def _running_servers() -> list[dict[str, Any]]:
    from jupyter_server.serverapp import list_running_servers

    return list(list_running_servers())


def _contains(root: str, path: Path) -> bool:
    try:
        path.resolve().relative_to(Path(root).expanduser().resolve())
    except (ValueError, OSError):
        return False
    return True


def _pick(servers: list[dict[str, Any]], env: Mapping[str, str], cwd: Path, ppid: int) -> Any:
    for info in servers:
        if info.get("pid") == ppid:
            return info
    # a notebook's kernel runs in its folder; JPY_SESSION_NAME is the notebook's path
    session_name = env.get("JPY_SESSION_NAME", "")
    candidates = [cwd]
    if session_name:
        candidates.insert(0, Path(session_name) if os.path.isabs(session_name) else cwd)
    roots = [
        info
        for info in servers
        if any(
            _contains(str(info.get("root_dir") or info.get("notebook_dir", "")), p)
            for p in candidates
        )
    ]
    roots.sort(key=lambda i: len(str(i.get("root_dir") or i.get("notebook_dir", ""))), reverse=True)
    return roots[0] if roots else None


def find_server(
    env: Mapping[str, str] | None = None,
    *,
    cwd: str | Path | None = None,
    ppid: int | None = None,
    servers: list[dict[str, Any]] | None = None,
) -> ServerInfo:
    """The Jupyter server this process (a kernel) belongs to; ``ServerNotFound`` if none.

    The keyword arguments replace what is read from this process (for tests).
    """
    env = os.environ if env is None else env
    url = env.get("JUPYTER_SERVER_URL", "").strip()
    if url:
        token = env.get("JUPYTER_TOKEN", "") or env.get("JUPYTER_SERVER_TOKEN", "")
        return ServerInfo(_slash(url), token, "JUPYTER_SERVER_URL")
    hub_token = env.get("JUPYTERHUB_API_TOKEN", "")
    hub_url = env.get("JUPYTERHUB_SERVICE_URL", "").strip()
    if hub_url and hub_token:
        return ServerInfo(_slash(hub_url), hub_token, "JUPYTERHUB_SERVICE_URL")
    if servers is None:
        servers = _running_servers()
    info = _pick(
        servers,
        env,
        Path(cwd) if cwd is not None else Path.cwd(),
        os.getppid() if ppid is None else ppid,
    )
    if info is None and len(servers) == 1:
        info = servers[0]  # one server: the kernel's, or the only one there is
    if info is None:
        where = "no running Jupyter server" if not servers else f"{len(servers)} servers, none"
        raise ServerNotFound(
            f"{where} found for this kernel; use AgClusterClient(url, token) "
            "or set JUPYTER_SERVER_URL and JUPYTER_TOKEN"
        )
    url = str(info["url"])
    prefix = env.get("JUPYTERHUB_SERVICE_PREFIX", "")
    if prefix and not url.rstrip("/").endswith(prefix.rstrip("/")):
        url = _slash(url).rstrip("/") + "/" + prefix.strip("/")
    token = str(info.get("token") or "") or hub_token
    return ServerInfo(_slash(url), token, f"runtime file of pid {info.get('pid')}")


# ---------------------------------------------------------------- SSE


def iter_sse(lines: Iterable[str]) -> Iterator[tuple[str, str, str]]:
    """``(id, event, data)`` per SSE frame of ``lines``; comments (heartbeats) skipped."""
    frame_id, kind, data = "", "", list[str]()
    for line in lines:
        if not line:
            if data:
                yield frame_id, kind, "\n".join(data)
            frame_id, kind, data = "", "", list[str]()
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "id":
                frame_id = value
            elif field == "event":
                kind = value
            elif field == "data":
                data.append(value)
    if data:
        yield frame_id, kind, "\n".join(data)


def _event(data: str) -> Event:
    try:
        return parse_event(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise AgClusterClientError(
            f"unexpected event from the server ({first['loc']}: {first['msg']}); "
            "are client and server the same agcluster-jupyter version?"
        ) from None


# ---------------------------------------------------------------- the client


_DROPPED = (httpx.RemoteProtocolError, httpx.ReadError, httpx.ReadTimeout)


class AgClusterClient:
    """The agcluster REST API of one Jupyter server.  Not thread-safe; cheap to create."""

    def __init__(
        self,
        url: str,
        token: str = "",
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = _slash(url)
        self.api_url = self.url + "api/agcluster/"
        self._token, self._timeout = token, timeout
        self._reading: set[httpx.Response] = set()  # event streams being read now
        headers = {"Authorization": f"token {token}"} if token else {}
        self._http = httpx.Client(
            base_url=self.api_url, headers=headers, timeout=timeout, transport=transport
        )

    @classmethod
    def discover(cls, **kwargs: Any) -> AgClusterClient:
        """A client for the Jupyter server this kernel runs under (see ``find_server``)."""
        info = find_server()
        return cls(info.url, info.token, **kwargs)

    def clone(self) -> AgClusterClient:
        """A client of the same server with its own connections (one per thread)."""
        return AgClusterClient(self.url, self._token, timeout=self._timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AgClusterClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing --------------------------------------------------------------------------

    def _unreachable(self, exc: Exception) -> ServerNotFound:
        return ServerNotFound(f"cannot reach the Jupyter server at {self.url}: {first_line(exc)}")

    @staticmethod
    def _check(response: httpx.Response) -> httpx.Response:
        if response.is_success:
            return response
        message, reason, field = response.reason_phrase, "", ""
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            message = str(body.get("message") or message)
            reason, field = str(body.get("reason") or ""), str(body.get("field") or "")
        elif response.status_code == 403:
            message = "forbidden: the token is missing or wrong"
        first = message.strip().splitlines()[0] if message.strip() else "no message"
        raise ApiError(response.status_code, first, reason, field)

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None
        return self._check(response)

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        body = self._request(method, path, **kwargs).json()
        if not isinstance(body, dict):
            raise AgClusterClientError(f"{method} {path}: expected a JSON object")
        return body

    def _stream(
        self, method: str, path: str, *, after: int | None = None, **kwargs: Any
    ) -> Generator[Event, None, None]:
        """The events of one SSE response, opened before the first ``next()`` returns.

        Failing to open it raises ``ServerNotFound`` or ``ApiError``; a drop while reading
        propagates as one of ``_DROPPED``.
        """
        headers = {"Accept": "text/event-stream"}
        if after is not None:
            headers["Last-Event-ID"] = str(after)
        timeout = httpx.Timeout(self._http.timeout.connect, read=_STREAM_READ_TIMEOUT)
        context = self._http.stream(method, path, headers=headers, timeout=timeout, **kwargs)
        try:
            response = context.__enter__()
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None
        return self._read(context, response)

    def _read(self, context: Any, response: httpx.Response) -> Generator[Event, None, None]:
        self._reading.add(response)
        try:
            if not response.is_success:
                response.read()
                self._check(response)
            for _id, _kind, data in iter_sse(response.iter_lines()):
                yield _event(data)
        finally:
            self._reading.discard(response)
            context.__exit__(None, None, None)

    def abort_streams(self) -> None:
        """End every event stream being read, from any thread: the reader sees the
        connection drop at once (a blocked read is woken by shutting the socket down)."""
        for response in list(self._reading):
            stream = response.extensions.get("network_stream")
            sock = stream.get_extra_info("socket") if stream is not None else None
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    # -- the API ---------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return self._json("GET", "health")

    def configs(self) -> list[dict[str, Any]]:
        configs: list[dict[str, Any]] = self._json("GET", "configs/")["configs"]
        return configs

    def config(self, config_id: str) -> dict[str, Any]:
        return self._json("GET", f"configs/{quote(config_id, safe='')}")

    def launch(
        self,
        config_id: str | None = None,
        *,
        config: dict[str, Any] | None = None,
        api_key: str | None = None,
        name: str | None = None,
        notebook: str | None = None,
        workspace: str | None = None,
        kernel_access: str | None = None,
    ) -> dict[str, Any]:
        """Start a session of a preset (or an inline ``config``); → ``{session_id, ...}``.
        ``notebook``: the path of the notebook that starts it (shown with the session, and
        its jupyter tools may edit it, and its running kernel is granted unless
        ``kernel_access`` is ``deny``); ``workspace``: a folder of the tree to work in."""
        body: dict[str, Any] = {"config": config} if config is not None else {}
        if config is None:
            body["config_id"] = config_id or "code-assistant"
        if api_key is not None:
            body["api_key"] = api_key
        if name is not None:
            body["name"] = name
        if notebook:
            body["notebook"] = notebook
        if workspace is not None:
            body["workspace"] = workspace
        if kernel_access is not None:
            body["kernel_access"] = kernel_access
        return self._json("POST", "agents/launch", json=body, timeout=120.0)

    def sessions(self) -> list[dict[str, Any]]:
        sessions: list[dict[str, Any]] = self._json("GET", "agents/sessions")["sessions"]
        return sessions

    def session(self, session_id: str) -> dict[str, Any]:
        return self._json("GET", f"agents/sessions/{session_id}")

    def stop(self, session_id: str, *, purge: bool = False) -> dict[str, Any]:
        params = {"purge": "true"} if purge else {}
        return self._json("DELETE", f"agents/sessions/{session_id}", params=params, timeout=60.0)

    def chat(self, session_id: str, message: str) -> Iterator[Event]:
        """Send ``message`` and yield the turn's events as they come, ending with ``done``.

        If the stream drops once the turn has started, it is re-opened from the last event
        received (``Last-Event-ID`` on the session's event log), so no event is lost or
        repeated.
        """
        # where this turn's events start, in case the stream drops before the first one
        last = int(self.session(session_id).get("last_seq", 0))
        stream = self._stream("POST", f"agents/{session_id}/chat", json={"message": message})
        attempts = 0
        while True:
            try:
                for event in stream:
                    if event.seq <= last:
                        continue  # already delivered (a replay overlaps)
                    last = event.seq
                    attempts = 0
                    yield event
                    if event.type == "done":
                        return
            except _DROPPED as exc:
                attempts += 1
                if attempts > _RECONNECTS:
                    raise AgClusterClientError(
                        f"the event stream of {session_id} kept dropping: {exc}"
                    ) from None
                time.sleep(min(0.1 * 2 ** (attempts - 1), 2.0))
            else:
                # the server closed the stream cleanly before done: resume all the same
                attempts += 1
                if attempts > _RECONNECTS:
                    raise AgClusterClientError(f"the turn of {session_id} ended without done")
            finally:
                stream.close()
            stream = self._stream("GET", f"agents/{session_id}/events", after=last)

    def interrupt(self, session_id: str) -> dict[str, Any]:
        return self._json("POST", f"agents/{session_id}/interrupt")

    def permission(
        self, session_id: str, request_id: str, decision: str, message: str = ""
    ) -> dict[str, Any]:
        """Answer a ``permission_request``: ``decision`` is ``"allow"`` or ``"deny"``."""
        body = {"decision": decision, "message": message}
        return self._json(
            "POST", f"agents/{session_id}/permissions/{quote(request_id, safe='')}", json=body
        )

    def events(self, session_id: str, after: int = 0, *, follow: bool = False) -> Iterator[Event]:
        """The session's event log after seq ``after``; with ``follow``, keep waiting."""
        params = {"follow": "true" if follow else "false"}
        return self._stream("GET", f"agents/{session_id}/events", after=after, params=params)

    def files(self, session_id: str) -> dict[str, Any]:
        """The workspace tree ``{root, tree, total_files}``."""
        return self._json("GET", f"files/{session_id}")

    def preview(self, session_id: str, path: str) -> dict[str, Any]:
        return self._json("GET", f"files/{session_id}/{quote(path.lstrip('/'))}")

    def read_bytes(self, session_id: str, path: str) -> bytes:
        path = quote(path.lstrip("/"))
        return self._request("GET", f"files/{session_id}/{path}", params={"raw": "1"}).content

    def upload(
        self,
        session_id: str,
        files: Mapping[str, bytes | str | Path],
        *,
        target_path: str = "",
        overwrite: bool = False,
    ) -> list[dict[str, Any]]:
        """Put ``{filename: bytes, text or a local Path}`` into the workspace folder."""
        parts: list[tuple[str, tuple[str, bytes]]] = []
        for filename, content in files.items():
            if isinstance(content, Path):
                data = content.read_bytes()
            elif isinstance(content, str):
                data = content.encode()
            else:
                data = content
            parts.append(("files", (filename, data)))
        params = {"target_path": target_path, "overwrite": "true" if overwrite else "false"}
        body = self._json("POST", f"files/{session_id}/upload", params=params, files=parts)
        uploaded: list[dict[str, Any]] = body["uploaded"]
        return uploaded

    def download(self, session_id: str) -> bytes:
        """The whole workspace as a ZIP."""
        return self._request("GET", f"files/{session_id}/download", timeout=300.0).content

    def export(self, session_id: str, format: str = "md") -> str:
        """The conversation as ``md``, ``jsonl`` or ``ipynb`` (notebook JSON) text."""
        return self._request("GET", f"agents/{session_id}/export", params={"format": format}).text

    # -- checkpoints -------------------------------------------------------------------

    def checkpoints(self, session_id: str) -> dict[str, Any]:
        """``{checkpoints: [{turn, prompt, files_changed, ...}], total, pruned_before?}``."""
        return self._json("GET", f"agents/{session_id}/checkpoints", timeout=120.0)

    def diff(self, session_id: str, turn: int, path: str | None = None) -> dict[str, Any]:
        """What turn ``turn`` changed: ``{turn, files: [{path, status, diff | cells}]}``."""
        params = {"path": path} if path else None
        return self._json(
            "GET", f"agents/{session_id}/checkpoints/{int(turn)}/diff", params=params, timeout=120.0
        )

    def restore(self, session_id: str, turn: int, paths: list[str] | None = None) -> list[str]:
        """The workspace (or ``paths``) as before turn ``turn``; returns what changed."""
        body = {"paths": list(paths)} if paths else {}
        reply = self._json(
            "POST", f"agents/{session_id}/checkpoints/{int(turn)}/restore", json=body, timeout=300.0
        )
        restored: list[str] = reply["restored"]
        return restored

    def rewind(self, session_id: str, turn: int) -> list[str]:
        """Files and conversation as before turn ``turn``; returns the paths changed."""
        reply = self._json(
            "POST", f"agents/{session_id}/rewind", json={"turn": int(turn)}, timeout=300.0
        )
        restored: list[str] = reply["restored"]
        return restored

    def undo(self, session_id: str) -> list[str]:
        """Reverse the last restore; returns the paths put back."""
        restored: list[str] = self._json(
            "POST", f"agents/{session_id}/undo", json={}, timeout=300.0
        )["restored"]
        return restored
