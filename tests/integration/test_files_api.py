"""The files API through a real Jupyter server with the extension loaded (auth on).

The sessions here are stand-ins handed out by the real manager's ``get_session`` (patched
per test), so these tests need no runner and no CLI; a real launched session's workspace
is covered by ``test_api.py``.  What they pin down: routes, auth on every method, error
JSON, hostile paths over HTTP, streaming (raw, ZIP, upload) and the activity rule.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import tracemalloc
import zipfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
from jupyter_server.auth.authorizer import Authorizer
from tornado.httpclient import HTTPClientError

from agcluster_jupyter.handlers.files import MAX_FILES_PER_UPLOAD
from agcluster_jupyter.workspace import UPLOAD_TMP_PREFIX, AsyncLocalWorkspace, LocalWorkspace

SID = "files-test_1"
SECRET = b"TOP-SECRET-host-credential-7f3a9c"
LIMIT = 1024 * 1024
BOUNDARY = "agc-test-boundary-93af"


@dataclass
class FakeSession:
    id: str
    workspace: AsyncLocalWorkspace


@pytest.fixture
def agcluster_config() -> dict[str, Any]:
    return {"max_upload_bytes": LIMIT}


@pytest.fixture
def authorizer_class() -> type[Authorizer] | None:
    return None


@pytest.fixture
def jp_server_config(
    jp_server_config: dict[str, Any], authorizer_class: type[Authorizer] | None
) -> dict[str, Any]:
    """The shared config (extension on, auth on), plus a test's own authorizer."""
    if authorizer_class is not None:
        jp_server_config["ServerApp"]["authorizer_class"] = authorizer_class
    return jp_server_config


@pytest.fixture
def files_env(
    jp_serverapp: Any,
    http_server: Any,
    jp_http_port: int,
    jp_base_url: str,
    jp_auth_header: dict[str, str],
    agent_dirs: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, Any]:
    """A workspace with files and links out, served as session ``SID``; records activity."""
    root = agent_dirs["workspaces"] / SID
    (root / "src").mkdir(parents=True)
    (root / "src" / "app.py").write_text("print('hi')\n")
    (root / "page.html").write_text("<script>alert(document.domain)</script>")
    (root / "data.bin").write_bytes(bytes(range(256)) * 1000)
    (root / "résumé.txt").write_text("cv\n")
    outside = agent_dirs["base"] / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(SECRET)
    os.symlink(outside / "secret.txt", root / "leak")
    os.symlink(outside, root / "leak_dir")
    os.symlink("src/app.py", root / "inside")

    apps = jp_serverapp.extension_manager.extension_apps["agcluster_jupyter"]
    manager = next(iter(apps)).manager
    session = FakeSession(SID, AsyncLocalWorkspace(LocalWorkspace(root)))
    activity: list[str] = []
    real_get = manager.get_session

    def get_session(session_id: str) -> Any:
        return session if session_id == SID else real_get(session_id)

    monkeypatch.setattr(manager, "get_session", get_session)
    monkeypatch.setattr(manager, "note_activity", lambda s: activity.append(s.id))

    async def no_storage_limit(*args: Any, **kwargs: Any) -> None:
        return None  # the stand-in has no config (the storage limit is tested with docker)

    monkeypatch.setattr(manager, "check_storage", no_storage_limit)
    return {
        "root": root,
        "outside": outside,
        "activity": activity,
        "port": jp_http_port,
        "base_url": jp_base_url,
        "auth": jp_auth_header["Authorization"],
    }


Fetch = Callable[..., Awaitable[Any]]


@pytest.fixture
def fetch(http_server_client: Any, jp_auth_header: dict[str, str], jp_base_url: str) -> Fetch:
    """``await fetch("files/ID/a%2fb", params=...)``: the path goes out byte for byte.

    (``jp_fetch`` URL-escapes its path, so it cannot send ``%2e%2e`` or ``%00`` tricks.)
    """

    async def call(
        path: str, *, params: dict[str, str] | None = None, headers: Any = None, **kwargs: Any
    ) -> Any:
        url = f"{jp_base_url}api/agcluster/{path}"
        if params:
            url += "?" + urlencode(params)
        kwargs.setdefault("request_timeout", 20)
        return await http_server_client.fetch(
            url, headers={**jp_auth_header, **(headers or {})}, **kwargs
        )

    return call


async def expect_error(coro: Any, status: int, field: str | None = None) -> dict[str, Any]:
    with pytest.raises(HTTPClientError) as info:
        await coro
    assert info.value.code == status, info.value.response and info.value.response.body
    assert info.value.response is not None
    body: dict[str, Any] = json.loads(info.value.response.body)
    assert body["message"] and "Traceback" not in body["message"]
    if field is not None:
        assert body.get("field") == field, body
    return body


def multipart(files: list[tuple[str, bytes]], extra: bytes = b"") -> bytes:
    out = extra
    for name, data in files:
        out += (
            (
                f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; '
                f'filename="{name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
            ).encode()
            + data
            + b"\r\n"
        )
    return out + f"--{BOUNDARY}--\r\n".encode()


MP_HEADERS = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


def leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.startswith(UPLOAD_TMP_PREFIX)]


# ---------------------------------------------------------------------------- reads


async def test_tree_preview_raw(fetch: Fetch, files_env: dict[str, Any]) -> None:
    tree = json.loads((await fetch(f"files/{SID}")).body)
    assert tree["total_files"] == 4
    by_name = {n["name"]: n for n in tree["tree"]}
    assert by_name["src"]["type"] == "directory"
    assert by_name["leak"]["type"] == by_name["leak_dir"]["type"] == "symlink"
    assert json.loads((await fetch(f"files/{SID}/")).body) == tree

    preview = json.loads((await fetch(f"files/{SID}/src/app.py")).body)
    assert (preview["content"], preview["language"], preview["lines"]) == (
        "print('hi')\n",
        "python",
        1,
    )
    binary = json.loads((await fetch(f"files/{SID}/data.bin")).body)
    assert binary == {"path": "data.bin", "binary": True, "size_bytes": 256_000,
                      "mime_type": "application/octet-stream"}  # fmt: skip
    encoded = quote("résumé.txt")
    assert json.loads((await fetch(f"files/{SID}/{encoded}")).body)["content"] == "cv\n"

    raw = await fetch(f"files/{SID}/data.bin", params={"raw": "1"})
    assert raw.body == bytes(range(256)) * 1000
    assert raw.headers["Content-Type"] == "application/octet-stream"
    assert raw.headers["Content-Length"] == "256000"
    assert raw.headers["Content-Disposition"] == 'inline; filename="data.bin"'
    assert raw.headers["X-Content-Type-Options"] == "nosniff"

    # workspace HTML must not run script with the Jupyter origin
    page = await fetch(f"files/{SID}/page.html", params={"raw": "true"})
    assert page.headers["Content-Type"] == "text/html"
    csp = page.headers["Content-Security-Policy"]
    assert "sandbox" in csp.split(";")[-1] and "allow-scripts" not in csp

    dl = await fetch(f"files/{SID}/{encoded}", params={"download": "1"})
    assert dl.body == b"cv\n"
    assert dl.headers["Content-Disposition"] == (
        "attachment; filename=\"r_sum_.txt\"; filename*=UTF-8''r%C3%A9sum%C3%A9.txt"
    )
    via_link = await fetch(f"files/{SID}/inside", params={"raw": "1"})
    assert via_link.body == b"print('hi')\n"
    assert files_env["activity"] == []  # reads are not activity: the reaper must see idle


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("%2e%2e/%2e%2e/etc/passwd", 400),
        ("..%2F..%2Foutside%2Fsecret.txt", 400),
        ("src/..%2f..%2f..%2foutside/secret.txt", 400),
        ("%2Fetc%2Fpasswd", 400),
        ("a%00b", 400),
        ("..%5C..%5Csecret.txt", 400),
        ("src//app.py", 400),
        ("leak", 400),
        ("leak_dir/secret.txt", 400),
        ("%252e%252e/secret.txt", 404),  # decoded once only: a literal '%2e%2e' folder
        ("missing.txt", 404),
        ("src", 400),  # a folder has no preview
    ],
)
async def test_hostile_paths_over_http(
    fetch: Fetch, files_env: dict[str, Any], path: str, status: int
) -> None:
    for params in ({}, {"raw": "1"}, {"download": "1"}):
        body = await expect_error(fetch(f"files/{SID}/{path}", params=params), status)
        assert SECRET.decode() not in json.dumps(body)
        if status == 400:
            assert body["field"] == "path"


async def test_bad_flags_and_unknown_session(fetch: Fetch, files_env: dict[str, Any]) -> None:
    await expect_error(fetch(f"files/{SID}/src/app.py", params={"raw": "maybe"}), 400, "raw")
    for path in ("files/nope", "files/nope/a.txt", "files/nope/download"):
        body = await expect_error(fetch(path), 404)
        assert "nope" in body["message"]
    await expect_error(
        fetch(
            "files/nope/upload",
            method="POST",
            body=multipart([("a", b"")]),
            headers=MP_HEADERS,
        ),
        404,
    )


async def test_zip_get_and_post(fetch: Fetch, files_env: dict[str, Any]) -> None:
    for method, body in (("GET", None), ("POST", b"")):
        response = await fetch(f"files/{SID}/download", method=method, body=body)
        assert response.headers["Content-Type"] == "application/zip"
        assert response.headers["Content-Disposition"] == (
            f'attachment; filename="{SID}-workspace.zip"'
        )
        assert SECRET not in response.body
        with zipfile.ZipFile(io.BytesIO(response.body)) as zf:
            names = set(zf.namelist())
            assert {"src/", "src/app.py", "data.bin", "inside", "page.html"} <= names
            assert not {"leak", "leak_dir/", "leak_dir/secret.txt"} & names
            assert zf.read("data.bin") == bytes(range(256)) * 1000
    assert files_env["activity"] == []


# ---------------------------------------------------------------------------- uploads


async def test_upload_files(fetch: Fetch, files_env: dict[str, Any]) -> None:
    root: Path = files_env["root"]
    body = multipart([("a.csv", b"x,y\n1,2\n"), ("b.bin", bytes(range(256)))])
    response = await fetch(
        f"files/{SID}/upload",
        method="POST",
        body=body,
        headers=MP_HEADERS,
        params={"target_path": "data/in"},
    )
    assert json.loads(response.body) == {
        "uploaded": [
            {"filename": "a.csv", "path": "data/in/a.csv"},
            {"filename": "b.bin", "path": "data/in/b.bin"},
        ]
    }
    assert (root / "data" / "in" / "b.bin").read_bytes() == bytes(range(256))
    assert files_env["activity"] == [SID]  # an upload is activity

    # exists → 409 and the original stays; overwrite=true replaces it
    again = multipart([("a.csv", b"new")])
    upload = f"files/{SID}/upload"
    params = {"target_path": "data/in"}
    await expect_error(
        fetch(upload, method="POST", body=again, headers=MP_HEADERS, params=params), 409
    )
    assert (root / "data" / "in" / "a.csv").read_bytes() == b"x,y\n1,2\n"
    await fetch(
        upload,
        method="POST",
        body=again,
        headers=MP_HEADERS,
        params={**params, "overwrite": "true"},
    )
    assert (root / "data" / "in" / "a.csv").read_bytes() == b"new"
    # other form fields are ignored; the default target is the root
    extra = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="note"\r\n\r\nhi\r\n'.encode()
    await fetch(upload, method="POST", body=multipart([("c.txt", b"c")], extra), headers=MP_HEADERS)
    assert (root / "c.txt").read_bytes() == b"c"
    assert leftovers(root) == []


async def test_upload_over_the_limit_is_413_and_leaves_nothing(
    fetch: Fetch, files_env: dict[str, Any]
) -> None:
    root: Path = files_env["root"]
    # the first file fits, the second does not: all or nothing
    body = multipart([("ok.txt", b"fine"), ("big.bin", b"\0" * (LIMIT + 1))])
    error = await expect_error(
        fetch(
            f"files/{SID}/upload",
            method="POST",
            body=body,
            headers=MP_HEADERS,
            params={"target_path": "up"},
        ),
        413,
        "files",
    )
    assert str(LIMIT) in error["message"] and "1 MiB" in error["message"]
    assert not (root / "up" / "ok.txt").exists() and not (root / "up" / "big.bin").exists()
    assert leftovers(root) == []
    assert files_env["activity"] == []
    # exactly at the limit is fine
    body = multipart([("edge.bin", b"\1" * LIMIT)])
    await fetch(f"files/{SID}/upload", method="POST", body=body, headers=MP_HEADERS)
    assert (root / "edge.bin").stat().st_size == LIMIT
    # a body bigger than the per-request cap is refused before a byte of it is read
    declared = MAX_FILES_PER_UPLOAD * (LIMIT + 20_000)
    status, reply = await raw_request(
        files_env["port"],
        f"POST {files_env['base_url']}api/agcluster/files/{SID}/upload HTTP/1.1\r\n"
        f"Host: 127.0.0.1\r\nAuthorization: {files_env['auth']}\r\n"
        f"Content-Type: {MP_HEADERS['Content-Type']}\r\nContent-Length: {declared}\r\n\r\n",
    )
    assert status == 413 and json.loads(reply)["field"] == "files"


async def raw_request(port: int, head: str) -> tuple[int, bytes]:
    """Send only a request head; the answer's status and body (the server closes)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head.encode())
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    status_line, _, rest = data.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


@pytest.mark.parametrize(
    ("files", "params", "headers", "status", "field"),
    [
        ([("../evil.txt", b"x")], {}, MP_HEADERS, 400, "filename"),
        ([("a/b.txt", b"x")], {}, MP_HEADERS, 400, "filename"),
        ([("C:\\x.txt", b"x")], {}, MP_HEADERS, 400, "filename"),
        ([("", b"x")], {}, MP_HEADERS, 400, "filename"),
        ([("ok.txt", b"x")], {"target_path": "../outside"}, MP_HEADERS, 400, "target_path"),
        ([("ok.txt", b"x")], {"target_path": "/tmp"}, MP_HEADERS, 400, "target_path"),
        ([("ok.txt", b"x")], {"target_path": "leak_dir"}, MP_HEADERS, 400, "path"),
        ([("ok.txt", b"x")], {"overwrite": "perhaps"}, MP_HEADERS, 400, "overwrite"),
        ([("ok.txt", b"x")], {}, {"Content-Type": "application/json"}, 400, "files"),
        ([], {}, MP_HEADERS, 400, "files"),
        ([("d.txt", b"1"), ("d.txt", b"2")], {}, MP_HEADERS, 409, "files"),
        ([("src", b"x")], {"overwrite": "1"}, MP_HEADERS, 409, "files"),
    ],
)
async def test_bad_uploads(
    fetch: Fetch,
    files_env: dict[str, Any],
    files: list[tuple[str, bytes]],
    params: dict[str, str],
    headers: dict[str, str],
    status: int,
    field: str,
) -> None:
    root: Path = files_env["root"]
    outside: Path = files_env["outside"]
    before = sorted(map(str, root.rglob("*"))), sorted(map(str, outside.rglob("*")))
    await expect_error(
        fetch(
            f"files/{SID}/upload",
            method="POST",
            body=multipart(files),
            headers=headers,
            params=params,
        ),
        status,
        field,
    )
    assert (sorted(map(str, root.rglob("*"))), sorted(map(str, outside.rglob("*")))) == before
    assert files_env["activity"] == []


async def test_cut_multipart_body_is_400(fetch: Fetch, files_env: dict[str, Any]) -> None:
    body = multipart([("cut.txt", b"data")])[:-10]
    await expect_error(
        fetch(f"files/{SID}/upload", method="POST", body=body, headers=MP_HEADERS),
        400,
        "files",
    )
    assert not (files_env["root"] / "cut.txt").exists() and leftovers(files_env["root"]) == []


def streamed(filename: str, size: int, block: bytes) -> tuple[dict[str, str], Any]:
    """Headers and a body_producer sending one ``files`` part of ``size`` bytes in blocks."""
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="{filename}"'
        "\r\n\r\n"
    ).encode()
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()

    async def producer(write: Callable[[bytes], Any]) -> None:
        await write(head)
        sent = 0
        while sent < size:
            piece = block[: size - sent]
            await write(piece)
            sent += len(piece)
        await write(tail)

    headers = {**MP_HEADERS, "Content-Length": str(len(head) + size + len(tail))}
    return headers, producer


async def test_over_limit_stream_is_413_without_keeping_the_rest(
    fetch: Fetch, files_env: dict[str, Any]
) -> None:
    """8 MiB against the 1 MiB limit: writing stops at the limit, the rest is dropped."""
    headers, producer = streamed("big.bin", 8 * LIMIT, b"\7" * 65536)
    tracemalloc.start()
    try:
        await expect_error(
            fetch(
                f"files/{SID}/upload",
                method="POST",
                headers=headers,
                body_producer=producer,
                request_timeout=60,
            ),
            413,
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 1024 * 1024, peak
    assert leftovers(files_env["root"]) == [] and not (files_env["root"] / "big.bin").exists()


BIG = 48 * 1024 * 1024


@pytest.mark.parametrize("agcluster_config", [{"max_upload_bytes": BIG}])
async def test_big_upload_streams_in_bounded_memory(
    fetch: Fetch, files_env: dict[str, Any]
) -> None:
    """48 MiB through the server (client and server in this process): peak stays small."""
    headers, producer = streamed("big.bin", BIG, b"\7" * 65536)
    tracemalloc.start()
    try:
        response = await fetch(
            f"files/{SID}/upload",
            method="POST",
            headers=headers,
            body_producer=producer,
            request_timeout=60,
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(f"\nupload of {BIG >> 20} MiB: tracemalloc peak {peak / 1024:.0f} KiB")
    assert json.loads(response.body)["uploaded"] == [{"filename": "big.bin", "path": "big.bin"}]
    assert (files_env["root"] / "big.bin").stat().st_size == BIG
    assert peak < 4 * 1024 * 1024, peak  # vs 48 MiB+ if the body were buffered


async def test_streamed_upload_under_the_limit_lands_whole(
    fetch: Fetch, files_env: dict[str, Any]
) -> None:
    payload = os.urandom(LIMIT - 123)
    body = multipart([("s.bin", payload)])

    async def producer(write: Callable[[bytes], Any]) -> None:
        for i in range(0, len(body), 7777):  # odd sizes: delimiters split anywhere
            await write(body[i : i + 7777])

    headers = {**MP_HEADERS, "Content-Length": str(len(body))}
    await fetch(f"files/{SID}/upload", method="POST", headers=headers, body_producer=producer)
    assert (files_env["root"] / "s.bin").read_bytes() == payload


# ---------------------------------------------------------------------------- auth


ROUTES = [
    ("GET", f"files/{SID}"),
    ("GET", f"files/{SID}/src/app.py"),
    ("GET", f"files/{SID}/src/app.py?raw=1"),
    ("GET", f"files/{SID}/download"),
    ("POST", f"files/{SID}/download"),
    ("POST", f"files/{SID}/upload"),
]


async def test_unauthenticated_requests_are_refused(
    files_env: dict[str, Any], jp_base_url: str, jp_http_port: int
) -> None:
    base = f"http://127.0.0.1:{jp_http_port}{jp_base_url}api/agcluster/"
    async with httpx.AsyncClient() as client:
        for method, path in ROUTES:
            kwargs: dict[str, Any] = {}
            if path.endswith("upload"):
                kwargs = {"content": multipart([("x.txt", b"x")]), "headers": MP_HEADERS}
            response = await client.request(method, base + path, **kwargs)
            assert response.status_code == 403, (method, path, response.status_code)
            assert SECRET not in response.content and b"print('hi')" not in response.content
    assert not (files_env["root"] / "x.txt").exists() and leftovers(files_env["root"]) == []


class DenyAgcluster(Authorizer):
    """Authenticated, but not allowed anything on the ``agcluster`` resource."""

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        return resource != "agcluster"


@pytest.mark.parametrize("authorizer_class", [DenyAgcluster])
async def test_authorization_is_checked_on_every_method(
    fetch: Fetch, files_env: dict[str, Any]
) -> None:
    for method, path in ROUTES:
        path, _, query = path.partition("?")
        kwargs: dict[str, Any] = {"method": method}
        if method == "POST":
            kwargs.update(body=multipart([("x.txt", b"x")]), headers=MP_HEADERS)
        if query:
            kwargs["params"] = dict([query.split("=")])
        with pytest.raises(HTTPClientError) as info:
            await fetch(path, **kwargs)
        assert info.value.code == 403, (method, path)
    # refused in prepare(): not a byte of the upload was written
    assert not (files_env["root"] / "x.txt").exists() and leftovers(files_env["root"]) == []


async def test_client_leaving_mid_download_releases_everything(
    fetch: Fetch, files_env: dict[str, Any]
) -> None:
    """A client that hangs up mid-ZIP or mid-raw: the walk's fds are closed, nothing errs."""
    root: Path = files_env["root"]
    for i in range(8):
        (root / f"noise{i}.bin").write_bytes(os.urandom(2 * 1024 * 1024))
    await fetch(f"files/{SID}")  # warm up: lazily opened server fds are not ours
    before = len(os.listdir("/proc/self/fd"))
    for path in (f"files/{SID}/download", f"files/{SID}/noise0.bin?raw=1"):
        reader, writer = await asyncio.open_connection("127.0.0.1", files_env["port"])
        writer.write(
            f"GET {files_env['base_url']}api/agcluster/{path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: {files_env['auth']}\r\n\r\n".encode()
        )
        await writer.drain()
        first = await reader.read(65536)
        assert first.startswith(b"HTTP/1.1 200")
        writer.close()
        await writer.wait_closed()
    for _ in range(50):  # the server notices the hang-up on its next write
        await asyncio.sleep(0.05)
        if len(os.listdir("/proc/self/fd")) <= before:
            break
    assert len(os.listdir("/proc/self/fd")) <= before
    assert (await fetch(f"files/{SID}/src/app.py")).code == 200  # still serving
