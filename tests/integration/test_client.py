"""The kernel's REST client against a real Jupyter server with the extension: discovery,
every method, one-line errors, and a chat stream that survives dropped connections.

The client is synchronous and the server runs on the test's event loop, so every client
call runs in a thread (``asyncio.to_thread``)."""

from __future__ import annotations

import asyncio
import io
import json
import os
import zipfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import nbformat
import pytest

from agcluster_jupyter.events import Event
from agcluster_jupyter.kernel.client import (
    AgClusterClient,
    AgClusterClientError,
    ApiError,
    ServerNotFound,
    find_server,
    iter_sse,
)

MakeClient = Callable[..., AgClusterClient]


@pytest.fixture
def server_url(
    jp_serverapp: Any,
    agcluster_app: Any,
    http_server_client: Any,  # the server listens only once this is set up
    jp_http_port: int,
    jp_base_url: str,
) -> str:
    return f"http://127.0.0.1:{jp_http_port}{jp_base_url}"


@pytest.fixture
def server_token(jp_serverapp: Any) -> str:
    token: str = jp_serverapp.identity_provider.token
    assert token
    return token


@pytest.fixture
async def make_client(server_url: str, server_token: str) -> AsyncIterator[MakeClient]:
    """Clients of the test server; every session they launched is purged at the end."""
    clients: list[AgClusterClient] = []

    def make(**kwargs: Any) -> AgClusterClient:
        client = AgClusterClient(server_url, server_token, **kwargs)
        clients.append(client)
        return client

    yield make

    def cleanup() -> None:
        for client in clients:
            for session in client.sessions():
                client.stop(session["session_id"], purge=True)
            client.close()

    await asyncio.to_thread(cleanup)


def run(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return asyncio.to_thread(fn, *args, **kwargs)


# ---------------------------------------------------------------- discovery (no server)


def test_find_server_from_environment() -> None:
    env = {"JUPYTER_SERVER_URL": "http://h:1/base", "JUPYTER_TOKEN": "t"}
    info = find_server(env, servers=[])
    assert (info.url, info.token) == ("http://h:1/base/", "t")
    hub = {"JUPYTERHUB_SERVICE_URL": "http://127.0.0.1:5/user/ann/", "JUPYTERHUB_API_TOKEN": "h"}
    info = find_server(hub, servers=[])
    assert (info.url, info.token) == ("http://127.0.0.1:5/user/ann/", "h")


def test_find_server_from_runtime_files(tmp_path: Path) -> None:
    outer = {"url": "http://localhost:1/", "token": "a", "root_dir": str(tmp_path), "pid": 11}
    inner_dir = tmp_path / "project"
    inner_dir.mkdir()
    inner = {"url": "http://localhost:2/", "token": "b", "root_dir": str(inner_dir), "pid": 12}
    other = {"url": "http://localhost:3/", "token": "c", "root_dir": "/nonexistent", "pid": 13}
    servers = [outer, inner, other]
    # the kernel's parent process wins
    assert find_server({}, servers=servers, cwd=inner_dir, ppid=13).token == "c"
    # else the deepest root holding the kernel's folder
    assert find_server({}, servers=servers, cwd=inner_dir, ppid=1).token == "b"
    assert find_server({}, servers=servers, cwd=tmp_path, ppid=1).token == "a"
    # one server: that one; none that fits: a clear error
    assert find_server({}, servers=[other], cwd=tmp_path, ppid=1).token == "c"
    with pytest.raises(ServerNotFound, match="none found for this kernel"):
        find_server({}, servers=[other, inner], cwd=Path("/"), ppid=1)
    with pytest.raises(ServerNotFound, match="no running Jupyter server") as info:
        find_server({}, servers=[], cwd=tmp_path, ppid=1)
    assert "\n" not in str(info.value) and "AgClusterClient(url, token)" in str(info.value)
    # JupyterHub: the runtime file's server, the hub token when the file has none
    hub = {"JUPYTERHUB_SERVICE_PREFIX": "/user/ann/", "JUPYTERHUB_API_TOKEN": "h"}
    tokenless = {**other, "token": "", "url": "http://127.0.0.1:3/"}
    server = find_server(hub, servers=[tokenless], cwd=tmp_path, ppid=13)
    assert (server.url, server.token) == ("http://127.0.0.1:3/user/ann/", "h")


def test_iter_sse_frames() -> None:
    lines = [": heartbeat", "", "id: 3", "event: message", "data: {", "data: }", "", "data:x"]
    assert list(iter_sse(lines)) == [("3", "message", "{\n}"), ("", "", "x")]


def test_unreachable_server_is_one_line() -> None:
    with AgClusterClient("http://127.0.0.1:9/", "t", timeout=2) as client:
        with pytest.raises(ServerNotFound, match="cannot reach the Jupyter server") as info:
            client.health()
        assert "\n" not in str(info.value)
        with pytest.raises(ServerNotFound):
            list(client.events("x"))


# ---------------------------------------------------------------- against the server


async def test_discovered_from_the_servers_runtime_file(
    jp_serverapp: Any, server_url: str, jp_http_port: int, server_token: str
) -> None:
    jp_serverapp.write_server_info_file()
    try:
        info = find_server({}, ppid=os.getpid())
        assert info.token == server_token and f":{jp_http_port}/" in info.url
        with AgClusterClient(info.url, info.token) as client:
            health = await run(client.health)
        assert health["provider"] == "local"
    finally:
        jp_serverapp.remove_server_info_file()


async def test_errors_are_api_errors_with_one_line(make_client: MakeClient) -> None:
    client = make_client()
    with pytest.raises(ApiError) as info:
        await run(client.session, "no-such-session")
    assert info.value.status == 404 and "\n" not in str(info.value)
    assert str(info.value).startswith("agcluster error 404: ")
    with pytest.raises(ApiError) as info:
        await run(client.launch, "no-such-preset")
    assert info.value.status == 400 and info.value.field == "config_id"
    wrong = AgClusterClient(client.url, "wrong-token")
    with pytest.raises(ApiError) as info:
        await run(wrong.health)
    assert info.value.status == 403
    wrong.close()
    with pytest.raises(ApiError) as info:
        await run(lambda: list(client.events("no-such-session")))
    assert info.value.status == 404


@pytest.mark.cli
async def test_every_method(make_client: MakeClient) -> None:
    client = make_client()
    assert (await run(client.health))["status"] in {"ok", "degraded"}
    configs = await run(client.configs)
    assert "data-analysis" in {c["id"] for c in configs}
    assert (await run(client.config, "code-assistant"))["id"] == "code-assistant"

    launched = await run(client.launch, "code-assistant", name="from the client")
    sid = launched["session_id"]
    assert launched["status"] == "ready"
    assert sid in {s["session_id"] for s in await run(client.sessions)}
    assert (await run(client.session, sid))["name"] == "from the client"

    uploaded = await run(client.upload, sid, {"data.csv": "a,b\n1,2\n"}, target_path="in")
    assert uploaded[0]["path"] == "in/data.csv"
    events: list[Event] = await run(lambda: list(client.chat(sid, "hello")))
    assert events[-1].type == "done"
    text = "".join(e.text for e in events if e.type == "message" and e.role == "assistant")
    assert "scripted demo model" in text

    tree = await run(client.files, sid)
    assert tree["total_files"] >= 1
    preview = await run(client.preview, sid, "in/data.csv")
    assert preview["content"] == "a,b\n1,2\n"
    assert await run(client.read_bytes, sid, "in/data.csv") == b"a,b\n1,2\n"
    archive = zipfile.ZipFile(io.BytesIO(await run(client.download, sid)))
    assert "in/data.csv" in archive.namelist()

    log = await run(lambda: list(client.events(sid)))
    assert [e.seq for e in log] == list(range(1, len(log) + 1))
    assert [e.seq for e in await run(lambda: list(client.events(sid, after=3)))][0] == 4
    notebook = nbformat.reads(await run(client.export, sid, "ipynb"), as_version=4)
    nbformat.validate(notebook)
    assert json.loads((await run(client.export, sid, "jsonl")).splitlines()[0])["seq"] == 1

    assert (await run(client.interrupt, sid))["interrupted"] is False
    with pytest.raises(ApiError) as info:
        await run(client.permission, sid, "nope", "allow")
    assert info.value.status == 404
    assert (await run(client.stop, sid))["stopped"] is True
    assert (await run(client.session, sid))["state"] == "stopped"


# ---------------------------------------------------------------- dropped streams


class _DroppingStream(httpx.SyncByteStream):
    """Passes ``frames`` SSE frames through, then fails like a dropped connection."""

    def __init__(self, inner: httpx.SyncByteStream, frames: int) -> None:
        self.inner, self.frames = inner, frames

    def __iter__(self) -> Iterator[bytes]:
        buffer = b""
        for chunk in self.inner:
            buffer += chunk
            if buffer.count(b"\n\n") >= self.frames:
                cut = 0
                for _ in range(self.frames):
                    cut = buffer.index(b"\n\n", cut) + 2
                yield buffer[:cut]
                raise httpx.ReadError("connection dropped (test)")
        yield buffer

    def close(self) -> None:
        self.inner.close()


class DroppingTransport(httpx.BaseTransport):
    """Drops the n-th SSE response (chat or events) after ``frames[n]`` frames."""

    def __init__(self, frames: list[int]) -> None:
        self.inner = httpx.HTTPTransport()
        self.frames = list(frames)
        self.streams: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.headers.get("Accept") == "text/event-stream":
            self.streams.append(f"{request.method} {request.url.path.rsplit('/', 1)[-1]}")
            if self.frames:
                assert isinstance(response.stream, httpx.SyncByteStream)
                response.stream = _DroppingStream(response.stream, self.frames.pop(0))
        return response

    def close(self) -> None:
        self.inner.close()


@pytest.mark.cli
@pytest.mark.parametrize(
    "drops",
    [
        [3, 4],  # the chat stream after 3 events, the first resumed stream after 4 more
        [0],  # before the first event: resumed from the session's last seq before the turn
        [1, 0, 2],  # resumed streams drop too, one before giving anything
    ],
)
async def test_chat_resumes_a_dropped_stream_without_gaps_or_duplicates(
    make_client: MakeClient, drops: list[int]
) -> None:
    plain = make_client()
    sid = (await run(plain.launch, "code-assistant"))["session_id"]
    before = (await run(plain.session, sid))["last_seq"]

    transport = DroppingTransport(drops)
    client = make_client(transport=transport)
    events: list[Event] = await run(lambda: list(client.chat(sid, "Please analyse some data")))

    assert transport.streams == ["POST chat"] + ["GET events"] * len(drops)
    seqs = [e.seq for e in events]
    assert seqs == list(range(before + 1, before + 1 + len(seqs)))
    assert events[-1].type == "done"
    log = await run(lambda: list(plain.events(sid, after=before)))
    assert [e.model_dump() for e in log] == [e.model_dump() for e in events]
    bash = [e for e in events if e.type == "tool_result" and "mean: 21.5 C" in e.output]
    assert len(bash) == 2


@pytest.mark.cli
async def test_chat_gives_up_on_a_stream_that_keeps_dropping(make_client: MakeClient) -> None:
    plain = make_client()
    sid = (await run(plain.launch, "code-assistant"))["session_id"]
    client = make_client(transport=DroppingTransport([2] + [0] * 10))
    with pytest.raises(AgClusterClientError, match="kept dropping"):
        await run(lambda: list(client.chat(sid, "hello")))
    # the turn itself went on and finished on the server
    for _ in range(200):
        if (await run(plain.session, sid))["state"] == "idle":
            break
        await asyncio.sleep(0.1)
    assert (await run(plain.session, sid))["state"] == "idle"
