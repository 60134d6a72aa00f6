"""The security rules as tests, against a real ``jupyter server`` process with the extension
(auth on, debug log) and a real launched session (local provider, the real runner and
claude CLI, the scripted model behind the gateway).

Covered elsewhere, on purpose not repeated here:

- one user's session ids are useless to another: ``tests/hub/test_jupyterhub.py``
  (``test_two_users_on_a_real_hub``: a hub user's token is refused on another user's
  server, and another user's session id is a 404 on one's own).  Within one Jupyter
  server there is one user; unknown ids are 404 on every route (fuzzed in
  ``test_fuzz_api.py``).
- the key in a Docker container: ``tests/e2e/test_docker_provider.py``
  (``test_the_key_stays_out_of_the_container``: ``docker inspect``, the container's
  environment and every process's ``/proc/*/environ`` inside it).
"""

from __future__ import annotations

import http.client
import io
import json
import os
import urllib.parse
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from agcluster_jupyter.config import MAX_CONFIG_JSON_BYTES
from agcluster_jupyter.handlers.base import MAX_JSON_BODY_BYTES
from agcluster_jupyter.testing.jupyter import descendants, runner_pids
from agcluster_jupyter.workspace import UPLOAD_TMP_PREFIX

from ..support import TEST_KEY, bash_scenario, parse_sse
from .conftest import SESSION_KEY, UPLOAD_LIMIT, LiveServer
from .openapi_support import load_spec, routes

pytestmark = pytest.mark.cli

#: sample values for the routes' path groups (the real session id is filled in per test)
SAMPLES = {
    "config_id": "code-assistant",
    "request_id": "req-1",
    "path": "hello.txt",
    "turn": "1",
    "other_id": "no-such-session",
}
PASSWD = b"root:x:0:0"
BOUNDARY = "agc-security-boundary"


def concrete_routes(session_id: str) -> list[tuple[str, str]]:
    """(method, path) for every method of every route, with real values in the groups."""
    out = []
    for route in routes():
        path = route.template.lstrip("/")
        for name, _ in route.groups:
            value = session_id if name == "session_id" else SAMPLES[name]
            path = path.replace("{" + name + "}", value)
        out += [(method.upper(), path) for method in sorted(route.methods)]
    return out


def multipart(files: list[tuple[str, bytes]]) -> tuple[bytes, dict[str, str]]:
    body = b""
    for name, data in files:
        body += (
            (
                f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="{name}"'
                "\r\nContent-Type: application/octet-stream\r\n\r\n"
            ).encode()
            + data
            + b"\r\n"
        )
    body += f"--{BOUNDARY}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


def body_for(method: str, path: str) -> dict[str, Any]:
    """A request body the route would accept from an authenticated, XSRF-carrying client."""
    if path.endswith("/upload"):
        content, headers = multipart([("pwned.txt", b"written without auth")])
        return {"content": content, "headers": headers}
    if path.endswith("/chat"):
        return {"json": {"message": "hello"}}
    if "/permissions/" in path:
        return {"json": {"decision": "allow"}}
    if path.endswith("launch"):
        return {"json": {"config_id": "code-assistant"}}
    if path.endswith("notebooks/open"):
        return {"json": {"path": "x.ipynb", "dirty": True}}
    if path.endswith("/kernels"):
        return {"json": {"notebook": "x.ipynb"}}
    return {}


def error_body(response: httpx.Response) -> dict[str, Any]:
    """The JSON error of a refused request: a message and a reason, no traceback."""
    assert response.headers["Content-Type"].startswith("application/json"), response.text
    body: dict[str, Any] = response.json()
    assert body["message"] and body["reason"], body
    assert "Traceback" not in response.text and 'File "' not in response.text
    return body


def sessions(server: LiveServer) -> dict[str, dict[str, Any]]:
    listing = server.request("GET", "agents/sessions").json()
    return {s["session_id"]: s for s in listing["sessions"]}


# ---------------------------------------------------------------------------- auth


def test_unauthenticated_requests_to_every_route_are_refused(
    live_server: LiveServer, live_session: dict[str, Any]
) -> None:
    sid = live_session["session_id"]
    workspace = Path(live_session["workspace"])
    before = sessions(live_server)
    checked = concrete_routes(sid)
    assert len(checked) >= 16
    for credentials in ({}, {"Authorization": "token not-the-token"}, {"Cookie": "x=y"}):
        for method, path in checked:
            kwargs = body_for(method, path)
            kwargs["headers"] = {**kwargs.get("headers", {}), **credentials}
            response = live_server.request(method, path, auth=False, **kwargs)
            where = f"{method} {path} {credentials}"
            assert response.status_code in (401, 403), (where, response.status_code)
            body = error_body(response)
            assert b"hello\n" not in response.content and sid not in response.text, where
            if not credentials and method in ("POST", "DELETE"):
                # no token and no cookie: the 403 says to pass a token, not "_xsrf ..."
                assert "Authorization: token" in body["message"], (where, body)
    # nothing happened: no session stopped or launched, nothing written
    assert sessions(live_server).keys() == before.keys()
    assert sessions(live_server)[sid]["state"] in ("ready", "idle")
    assert not (workspace / "pwned.txt").exists()
    assert not [p for p in workspace.rglob(f"{UPLOAD_TMP_PREFIX}*")]


@contextmanager
def cookie_client(server: LiveServer) -> Iterator[httpx.Client]:
    """A browser-like client logged in with the token through Jupyter's login form."""
    root = server.url.split("/api/agcluster/")[0]
    with httpx.Client(timeout=60) as client:
        client.get(f"{root}/login").raise_for_status()
        xsrf = client.cookies["_xsrf"]
        login = client.post(f"{root}/login", data={"password": server.process.token, "_xsrf": xsrf})
        assert login.status_code == 302, login.text
        assert any(name.startswith("username-") for name in client.cookies), dict(client.cookies)
        yield client


def test_cookie_requests_need_the_xsrf_token(
    live_server: LiveServer, live_session: dict[str, Any]
) -> None:
    sid = live_session["session_id"]
    workspace = Path(live_session["workspace"])
    before = sessions(live_server).keys()
    with cookie_client(live_server) as client:
        url = live_server.url
        assert client.get(url + f"agents/sessions/{sid}").status_code == 200  # the cookie works
        unsafe = [(m, p) for m, p in concrete_routes(sid) if m in ("POST", "DELETE", "PUT")]
        assert {m for m, _ in unsafe} == {"POST", "DELETE", "PUT"} and len(unsafe) == 13
        for method, path in unsafe:
            response = client.request(method, url + path, **body_for(method, path))
            assert response.status_code == 403, (method, path, response.status_code)
            assert "_xsrf" in error_body(response)["message"]
        assert sessions(live_server).keys() == before
        assert not (workspace / "pwned.txt").exists()

        # the same requests with the XSRF header go through
        xsrf = {"X-XSRFToken": client.cookies["_xsrf"]}
        zipped = client.post(url + f"files/{sid}/download", headers=xsrf)
        assert zipped.status_code == 200 and zipped.content.startswith(b"PK"), zipped.text
        content, headers = multipart([("via-cookie.txt", b"with xsrf")])
        uploaded = client.post(
            url + f"files/{sid}/upload", content=content, headers={**headers, **xsrf}
        )
        assert uploaded.status_code == 200, uploaded.text
        assert (workspace / "via-cookie.txt").read_bytes() == b"with xsrf"
        launched = client.post(
            url + "agents/launch", json={"config_id": "code-assistant"}, headers=xsrf
        )
        assert launched.status_code == 201, launched.text
        other = launched.json()["session_id"]
        gone = client.delete(url + f"agents/sessions/{other}?purge=true", headers=xsrf)
        assert gone.status_code == 200, gone.text
    (workspace / "via-cookie.txt").unlink()


def test_a_refused_upload_is_answered_and_its_connection_stays_usable(
    live_server: LiveServer, live_session: dict[str, Any]
) -> None:
    """An upload refused before its body is read (here: not multipart) gets its 400 on a
    connection that stays open: tornado closes one whose body it did not read, and with
    the body still in the socket the client saw a reset instead of the answer."""
    sid = live_session["session_id"]
    url = urllib.parse.urlsplit(live_server.url)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=30)
    try:
        conn.request(
            "POST",
            f"{url.path}files/{sid}/upload",
            body=b"not a multipart body\n" * 200,
            headers={**live_server.auth, "Content-Type": "text/plain"},
        )
        refused = conn.getresponse()
        assert refused.status == 400
        assert "multipart/form-data" in json.loads(refused.read())["message"]
        sock = conn.sock
        conn.request("GET", f"{url.path}agents/sessions/{sid}", headers=live_server.auth)
        again = conn.getresponse()
        assert again.status == 200 and json.loads(again.read())["session_id"] == sid
        assert conn.sock is sock  # the same connection, not a new one
    finally:
        conn.close()


# ---------------------------------------------------------------------------- the key


def test_the_key_is_never_on_disk_in_logs_or_in_environments(
    live_server: LiveServer, live_session: dict[str, Any]
) -> None:
    """Two keys: the server's (its environment) and one given in a launch body.  After a
    turn in each session, neither is in any file the server or its agents wrote (state,
    records, event logs, the CLI's state, workspaces, Jupyter's data and runtime folders,
    the debug server log), nor in a runner's or CLI's environment."""
    live_server.model.add_scenarios([bash_scenario("print env", "env; ls -la ~ .")])
    own = live_server.launch(config_id="code-assistant", api_key=SESSION_KEY)
    try:
        for session in (live_session, own):
            reply = live_server.request(
                "POST",
                f"agents/{session['session_id']}/chat",
                json={"message": "print env please"},
                headers={"Accept": "text/event-stream"},
                timeout=120,
            )
            events = parse_sse(reply.text)
            assert events[-1]["type"] == "done", events[-3:]
            outputs = [e["output"] for e in events if e["type"] == "tool_result"]
            assert outputs and "PATH=" in outputs[0], outputs  # the command did run
            assert TEST_KEY not in reply.text and SESSION_KEY not in reply.text

        # the keys were in use: the model got each from the gateway
        used = {r.headers.get("x-api-key") for r in live_server.model.message_requests}
        assert {TEST_KEY, SESSION_KEY} <= used, used

        processes: set[int] = set()
        for runner in runner_pids(str(live_server.base)):
            processes |= {runner, *descendants(runner)}
        assert len(processes) >= 4, "expected two runners and their claude CLIs"
        for pid in processes:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
            assert TEST_KEY.encode() not in environ, pid
            assert SESSION_KEY.encode() not in environ, pid

        log = live_server.log_text()
        assert "agents/launch" in log and "[D " in log, "the debug log is not being captured"
        scanned = 0
        for dirpath, _, names in os.walk(live_server.base):
            for name in names:
                path = Path(dirpath, name)
                if path.is_socket() or not path.is_file():
                    continue
                data = path.read_bytes()
                scanned += 1
                for key in (TEST_KEY, SESSION_KEY):
                    assert key.encode() not in data, f"{key} found in {path}"
        # the scan reached what a turn leaves: records, event logs, the CLI's transcripts
        assert scanned >= 10, scanned
    finally:
        live_server.request("DELETE", f"agents/sessions/{own['session_id']}?purge=true")


# ---------------------------------------------------------------------------- paths


@pytest.fixture
def outside(live_server: LiveServer, live_session: dict[str, Any]) -> Path:
    """A host folder next to the workspace, linked from inside it; writable by the server."""
    folder = live_server.base / "outside"
    folder.mkdir(exist_ok=True)
    (folder / "secret.txt").write_bytes(b"HOST-SECRET-4f1a")
    link = Path(live_session["workspace"]) / "outside_link"
    if not link.is_symlink():
        os.symlink(folder, link)
    return folder


HOSTILE_PATHS = [
    "passwd",  # a link to /etc/passwd
    "etc_link/passwd",  # through a link to /etc
    "etc_link",
    "outside_link/secret.txt",
    "%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "..%2F..%2F..%2Fetc%2Fpasswd",
    "src/..%2f..%2f..%2f..%2fetc/passwd",
    "%2Fetc%2Fpasswd",
    "hello.txt%00.png",
    "..%5C..%5Cetc%5Cpasswd",
]


def test_path_and_symlink_escapes_over_http(
    live_server: LiveServer, live_session: dict[str, Any], outside: Path
) -> None:
    sid = live_session["session_id"]
    secret = (outside / "secret.txt").read_bytes()
    for path in HOSTILE_PATHS:
        for query in ("", "?raw=1", "?download=1"):
            response = live_server.request("GET", f"files/{sid}/{path}{query}")
            where = f"{path}{query}"
            assert response.status_code in (400, 404), (where, response.status_code)
            error_body(response)
            assert PASSWD not in response.content and secret not in response.content, where

    # the tree lists the links as links and never walks them
    tree = live_server.request("GET", f"files/{sid}").json()
    nodes = {n["name"]: n for n in tree["tree"]}
    for name in ("etc_link", "passwd", "outside_link"):
        assert nodes[name]["type"] == "symlink" and "children" not in nodes[name], nodes[name]

    # the ZIP skips links out: no /etc, no host secret
    for method in ("GET", "POST"):
        response = live_server.request(method, f"files/{sid}/download")
        assert response.status_code == 200
        with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
            names = archive.namelist()
            assert "hello.txt" in names and "src/app.py" in names, names
            leaked = [n for n in names if n.split("/")[0] in ("etc_link", "passwd", "outside_link")]
            assert not leaked, leaked
            for name in names:
                data = archive.read(name)
                assert PASSWD not in data and secret not in data, name

    # uploads never land outside, whatever the target
    before = sorted(outside.rglob("*"))
    for target in ("outside_link", "outside_link/sub", "../outside", "/tmp", "etc_link", "a/../.."):
        content, headers = multipart([("pwned.txt", b"x")])
        response = live_server.request(
            "POST",
            f"files/{sid}/upload",
            params={"target_path": target},
            content=content,
            headers=headers,
        )
        assert response.status_code == 400, (target, response.status_code, response.text)
        assert error_body(response)["field"] in ("target_path", "path")
    assert sorted(outside.rglob("*")) == before
    assert not Path("/etc/pwned.txt").exists() and not Path("/tmp/pwned.txt").exists()


# ---------------------------------------------------------------------------- sizes


def test_an_upload_over_the_limit_is_413_and_writes_nothing(
    live_server: LiveServer, live_session: dict[str, Any]
) -> None:
    sid = live_session["session_id"]
    workspace = Path(live_session["workspace"])
    content, headers = multipart([("small.txt", b"ok"), ("big.bin", b"\0" * (UPLOAD_LIMIT + 1))])
    response = live_server.request("POST", f"files/{sid}/upload", content=content, headers=headers)
    assert response.status_code == 413, response.text
    assert error_body(response)["field"] == "files"
    assert not (workspace / "small.txt").exists() and not (workspace / "big.bin").exists()
    assert not list(workspace.rglob(f"{UPLOAD_TMP_PREFIX}*"))


def test_huge_json_bodies_are_413_and_leave_no_session_behind(
    live_server: LiveServer, live_session: dict[str, Any]
) -> None:
    sid = live_session["session_id"]
    before = sessions(live_server).keys()
    huge = "x" * MAX_JSON_BODY_BYTES
    for path, body in (
        (f"agents/{sid}/chat", {"message": huge}),
        ("agents/launch", {"config_id": "code-assistant", "name": huge}),
        ("agents/launch", {"config": {"system_prompt": huge}}),
        (f"agents/{sid}/permissions/req-1", {"decision": "allow", "message": huge}),
    ):
        response = live_server.request("POST", path, json=body)
        assert response.status_code == 413, (path, response.status_code, response.text[:300])
        assert error_body(response)["field"] == "body"
    # under the body limit but over what a runner can be handed: a 400 naming the config
    prompt = "y" * (MAX_CONFIG_JSON_BYTES + 1)
    response = live_server.request(
        "POST", "agents/launch", json={"config": {"system_prompt": prompt}}
    )
    assert response.status_code == 400, response.text[:300]
    assert error_body(response)["field"] == "config"
    assert sessions(live_server).keys() == before  # no half-launched session holds a slot
    assert sessions(live_server)[sid]["state"] in ("ready", "idle")


def test_a_long_message_under_the_limit_gets_through(
    live_server: LiveServer, live_session: dict[str, Any]
) -> None:
    """The body limit leaves room for escaping: ~1 MiB of non-ASCII text re-encoded for
    the runner (up to 3x) still fits what the runner accepts."""
    message = "é" * (MAX_JSON_BODY_BYTES // 2 - 64)  # 2 bytes each in UTF-8
    body = json.dumps({"message": message}, ensure_ascii=False).encode()
    assert len(body) <= MAX_JSON_BODY_BYTES
    response = live_server.request(
        "POST",
        f"agents/{live_session['session_id']}/chat",
        content=body,
        headers={"Content-Type": "application/json"},
        timeout=120,
    )
    assert response.status_code == 200, response.text[:300]
    reply = response.json()
    assert reply["events"][-1]["type"] == "done"
    assert not [e for e in reply["events"] if e["type"] == "error"], reply["events"]
    prompts = [r.prompt for r in live_server.model.message_requests]
    assert any(message in p for p in prompts), "the model never got the whole message"


# ---------------------------------------------------------------------------- malformed


MALFORMED: list[tuple[str, bytes]] = [
    ("not JSON", b"{not json"),
    ("truncated", b'{"message": "hi"'),
    ("an array", b"[1, 2]"),
    ("a string", b'"hello"'),
    ("not UTF-8", b'{"message": "\xff\xfe"}'),
    ("a lone surrogate", b'{"message": "\\ud800", "decision": "allow", "config_id": "\\udfff"}'),
    ("NaN", b'{"message": NaN}'),
]
WRONG_TYPES: dict[str, list[dict[str, Any]]] = {
    "agents/launch": [
        {"config_id": 5},
        {"config": "code-assistant"},
        {"config": {"id": "x", "allowed_tools": "Bash"}},
        {"config_id": "code-assistant", "name": ["x"]},
        {"config_id": "code-assistant", "api_key": ""},
        {"config_id": "code-assistant", "config": {"id": "x"}},
    ],
    "agents/{sid}/chat": [{"message": 1}, {"message": ""}, {"message": None}, {"msg": "hi"}],
    "agents/{sid}/permissions/req-1": [{"decision": "maybe"}, {"decision": "allow", "message": 3}],
    "agents/{sid}/checkpoints/{turn}/restore": [
        {"paths": "x.txt"},
        {"paths": []},
        {"paths": [1]},
        {"paths": ["../x"]},
        {"turn": 1},
    ],
    "agents/{sid}/fork": [{"turn": "1"}, {"turn": 0}, {"name": 5}, {"x": 1}],
    "agents/{sid}/rewind": [{"turn": "1"}, {"turn": 0}, {"turn": True}, {}, {"turn": 1, "x": 2}],
    "notebooks/open": [
        {"path": 1, "dirty": True},
        {"path": "", "dirty": True},
        {"path": "a.ipynb", "dirty": "yes"},
        {"path": "a.ipynb"},
        {"path": "a.ipynb", "dirty": False, "page": 3},
        {"path": "a.ipynb", "dirty": False, "extra": 1},
    ],
    "agents/{sid}/kernels": [
        {"notebook": 1},
        {"notebook": ""},
        {},
        {"notebook": "a.ipynb", "x": 1},
    ],
}


def test_malformed_bodies_get_a_400_with_a_message(
    live_server: LiveServer, live_session: dict[str, Any]
) -> None:
    sid = live_session["session_id"]
    before = sessions(live_server).keys()
    # every operation that takes a JSON body is here (derived from the spec)
    spec = load_spec()
    json_bodies = {
        path.lstrip("/").replace("{session_id}", "{sid}").replace("{request_id}", "req-1"): method
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method != "parameters"
        and "application/json" in op.get("requestBody", {}).get("content", {})
    }
    assert set(json_bodies) == set(WRONG_TYPES)
    for template, wrong in WRONG_TYPES.items():
        path = template.replace("{sid}", sid).replace("{turn}", "1")
        method = json_bodies[template].upper()
        for name, raw in MALFORMED:
            response = live_server.request(
                method, path, content=raw, headers={"Content-Type": "application/json"}
            )
            assert response.status_code == 400, (path, name, response.status_code, response.text)
            error_body(response)
        for body in wrong:
            response = live_server.request(method, path, json=body)
            assert response.status_code == 400, (path, body, response.status_code, response.text)
            assert error_body(response).get("field"), (path, body, response.text)
    assert sessions(live_server).keys() == before


@pytest.mark.parametrize(
    "path",
    [
        "agents/{sid}/events?after=%ff",
        "agents/{sid}/events?after=-1&follow=false",
        "agents/{sid}/events?follow=false&after=1e3",
        "agents/{sid}/export?format=%ff",
        "agents/{sid}/export?format=pdf",
        "files/{sid}/%ff",
        "files/{sid}/hello.txt?raw=%ff",
        "files/{sid}/hello.txt?raw=perhaps",
        "configs/%ff",
        "agents/sessions/%ff",
    ],
)
def test_malformed_queries_and_paths_get_a_4xx_with_a_message(
    live_server: LiveServer, live_session: dict[str, Any], path: str
) -> None:
    response = live_server.request("GET", path.replace("{sid}", live_session["session_id"]))
    assert 400 <= response.status_code < 500, (path, response.status_code)
    error_body(response)


def test_a_bad_last_event_id_is_a_400(
    live_server: LiveServer, live_session: dict[str, Any]
) -> None:
    sid = live_session["session_id"]
    for header, query in (("x", ""), ("-3", ""), ("5", "?after=junk")):
        response = live_server.request(
            "GET", f"agents/{sid}/events{query}", headers={"Last-Event-ID": header}
        )
        assert response.status_code == 400, (header, query, response.status_code)
        assert error_body(response)["field"] in ("after", "Last-Event-ID")
    replay = live_server.request(
        "GET", f"agents/{sid}/events?follow=false&after=0", headers={"Last-Event-ID": "1"}
    )
    assert replay.status_code == 200 and parse_sse(replay.text)[0]["seq"] == 2  # the header wins
