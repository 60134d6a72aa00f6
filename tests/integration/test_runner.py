"""The agent runner as a process: the real claude CLI, through the real SDK, against the
scripted model, driven over the runner channel (HTTP on a unix socket, or TCP + token).

One runner serves most tests (each reads the events after its own cursor); the
permission, resume and TCP tests start their own.  The heartbeat and forwarder tests need
no CLI (no ``cli`` mark).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_unix_socket

import agcluster_jupyter
from agcluster_jupyter.config import AgentConfig
from agcluster_jupyter.runner.agent import AgentRunner, RunnerSettings
from agcluster_jupyter.runner.forwarder import Forwarder
from agcluster_jupyter.runner.protocol import token_digest
from agcluster_jupyter.runner.server import make_app
from agcluster_jupyter.testing import ScriptedModelServer

KEY = "runner-test-session-token"
#: what the server would present on every request; the runner gets its digest
CONTROL_TOKEN = "runner-test-control-token"
REPO = Path(agcluster_jupyter.__file__).resolve().parent.parent
IS_ROOT = os.geteuid() == 0
AGENT_USER = "nobody"

SLOW = "python3 -c 'import time; time.sleep(5)'"
SCRIPTS: list[dict[str, Any]] = [
    {
        "name": "full turn",
        "match": "build the greeting",
        "steps": [
            [
                {"text": "I'll plan, then write and edit the file."},
                {
                    "tool_use": {
                        "name": "TaskCreate",
                        "input": {
                            "subject": "Write hello.txt",
                            "description": "Create the greeting file",
                            "activeForm": "Writing hello.txt",
                        },
                    }
                },
                {
                    "tool_use": {
                        "name": "TaskCreate",
                        "input": {
                            "subject": "Personalise it",
                            "description": "Edit the greeting",
                            "activeForm": "Personalising",
                        },
                    }
                },
            ],
            [
                {
                    "tool_use": {
                        "name": "TaskUpdate",
                        "input": {"taskId": "{task:1}", "status": "in_progress"},
                    }
                },
                {
                    "tool_use": {
                        "name": "Write",
                        "input": {"file_path": "{cwd}/hello.txt", "content": "hello world\n"},
                    }
                },
            ],
            [
                {
                    "tool_use": {
                        "name": "TaskUpdate",
                        "input": {"taskId": "{task:1}", "status": "completed"},
                    }
                },
                {
                    "tool_use": {
                        "name": "Edit",
                        "input": {
                            "file_path": "{cwd}/hello.txt",
                            "old_string": "world",
                            "new_string": "runner",
                        },
                    }
                },
            ],
            [
                {
                    "tool_use": {
                        "name": "Bash",
                        "input": {"command": "cat hello.txt; id -u", "description": "show"},
                    }
                }
            ],
        ],
        "final": "All done.",
    },
    {
        "name": "slow",
        "match": "take your time",
        "steps": [
            [{"tool_use": {"name": "Bash", "input": {"command": SLOW, "description": "wait"}}}]
        ],
        "final": "Slept.",
    },
    {
        "name": "permission",
        "match": "needs approval",
        "steps": [
            [
                {
                    "tool_use": {
                        "name": "Bash",
                        "input": {"command": "echo approved > perm.txt", "description": "w"},
                    }
                }
            ]
        ],
        "final": "Permission step finished.",
    },
    {
        "name": "delegate",
        "match": "delegate the listing",
        "steps": [
            [
                {
                    "tool_use": {
                        "name": "Agent",
                        "input": {
                            "description": "List files",
                            "prompt": "Sub-agent: list the workspace files",
                            "subagent_type": "lister",
                        },
                    }
                }
            ]
        ],
        "final": "The lister is done.",
    },
    {
        "name": "sub-agent",
        "match": "sub-agent: list",
        "steps": [[{"tool_use": {"name": "Bash", "input": {"command": "ls", "description": "l"}}}]],
        "final": "Listed.",
    },
    {"name": "overloaded", "match": "upstream trouble", "steps": [[{"error": 529}]]},
    {"name": "remember", "match": "remember the word", "steps": [], "final": "Noted."},
    {"name": "recall", "match": "which word", "steps": [], "final": "You said a word."},
    {"name": "plain", "match": "say hi", "steps": [], "final": "Hi there."},
]


# -- process and channel helpers ---------------------------------------------------------


def _config(**overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "id": "runner-test",
        "allowed_tools": ["Bash", "Read", "Write", "Edit", "TodoWrite", "Task"],
        "permission_mode": "acceptEdits",
        "agents": {
            "lister": {"description": "Lists files", "prompt": "You list files.", "tools": ["Bash"]}
        },
    }
    config.update(overrides)
    return config


class Runner:
    """A runner subprocess and the means to talk to it."""

    def __init__(self, base: Path, gateway: str, config: dict[str, Any], name: str = "r") -> None:
        self.base = base
        self.workspace = base / f"{name}-ws"
        self.state = base / f"{name}-state"
        self.socket = base / f"{name}.sock"
        self.gateway = gateway
        self.config = config
        self.log = base / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        for path in (self.workspace, self.state):
            path.mkdir(exist_ok=True)
            path.chmod(0o755)
        if IS_ROOT:
            nobody = pwd.getpwnam(AGENT_USER)
            os.chown(self.workspace, nobody.pw_uid, nobody.pw_gid)

    def start(
        self, *extra: str, listen: str | None = None, env: dict[str, str] | None = None
    ) -> None:
        cmd = [
            sys.executable,
            "-m",
            "agcluster_jupyter.runner",
            "--listen",
            listen or f"unix:{self.socket}",
            "--workspace",
            str(self.workspace),
            "--state-dir",
            str(self.state),
            "--gateway",
            self.gateway,
            *extra,
        ]
        if IS_ROOT:
            cmd += ["--agent-user", AGENT_USER]
        clean = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(REPO),
            "AGCLUSTER_CONFIG": json.dumps(self.config),
            "AGCLUSTER_SESSION_TOKEN": KEY,
            "AGCLUSTER_RUNNER_TOKEN_SHA256": token_digest(CONTROL_TOKEN),
            **(env or {}),
        }
        self.started_at = time.monotonic()
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                cmd, env=clean, cwd=self.workspace, stdout=log, stderr=log, start_new_session=True
            )

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        transport = httpx.AsyncHTTPTransport(uds=str(self.socket))
        headers = {"Authorization": f"Bearer {CONTROL_TOKEN}", **kwargs.pop("headers", {})}
        return httpx.AsyncClient(
            transport=transport, base_url="http://runner", timeout=30, headers=headers, **kwargs
        )

    def health(self) -> dict[str, Any] | None:
        """GET /health over a plain socket (httpx leaks one when the connect is refused)."""
        try:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(5)
                sock.connect(str(self.socket))
                sock.sendall(
                    b"GET /health HTTP/1.0\r\nHost: runner\r\n"
                    b"Authorization: Bearer " + CONTROL_TOKEN.encode() + b"\r\n\r\n"
                )
                data = b""
                while chunk := sock.recv(65536):
                    data += chunk
        except OSError:
            return None
        body: dict[str, Any] = json.loads(data.partition(b"\r\n\r\n")[2])
        return body

    def wait_ok(self, timeout: float = 60) -> tuple[list[str], float]:
        """Poll /health until ok; the statuses seen and seconds from process start."""
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, self.log_text()
            body = self.health()
            if body is not None:
                if not seen or seen[-1] != body["status"]:
                    seen.append(body["status"])
                if body["status"] == "ok":
                    return seen, time.monotonic() - self.started_at
                assert body["status"] != "failed", body
            time.sleep(0.02)
        raise AssertionError(f"runner not healthy: {seen} {self.log_text()}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> int | None:
        """SIGTERM, as a provider would; the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()
        code = self.proc.returncode
        # the CLI and its tools are in the runner's process group
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return code

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


class UnixRelay:
    """A unix socket in front of the scripted model, standing in for the gateway's own,
    so the runner's TCP→unix forwarder carries the CLI's model traffic."""

    def __init__(self, path: Path, port: int) -> None:
        self.path, self.port = path, port
        self.connections = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(),), daemon=True)

    async def _main(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        server = await asyncio.start_unix_server(self._handle, str(self.path))
        self._ready.set()
        await self._stop.wait()
        server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.port)

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
                dst.write_eof()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
        writer.close()
        up_writer.close()

    def __enter__(self) -> UnixRelay:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(5)


Lines = list[dict[str, Any]]


def is_done(line: dict[str, Any]) -> bool:
    return bool(line.get("event", {}).get("type") == "done")


def is_type(kind: str) -> Callable[[dict[str, Any]], bool]:
    return lambda line: bool(line.get("event", {}).get("type") == kind)


async def collect(
    client: httpx.AsyncClient,
    after: int,
    until: Callable[[dict[str, Any]], bool] = is_done,
    timeout: float = 60,
) -> Lines:
    """``/events`` lines after ``after`` up to and including the first one ``until``."""
    out: Lines = []

    async def read() -> None:
        async with client.stream("GET", "/events", params={"after": after}, timeout=None) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("application/x-ndjson")
            async for line in r.aiter_lines():
                if not line.strip():
                    continue  # heartbeat
                out.append(json.loads(line))
                if until(out[-1]):
                    return

    await asyncio.wait_for(read(), timeout)
    return out


async def last_rseq(client: httpx.AsyncClient) -> int:
    return int((await client.get("/health")).json()["last_rseq"])


async def run_turn(client: httpx.AsyncClient, message: str, timeout: float = 60) -> Lines:
    cursor = await last_rseq(client)
    response = await client.post("/turns", json={"message": message})
    assert response.status_code == 202, response.text
    return await collect(client, cursor, timeout=timeout)


def events(lines: Lines) -> list[dict[str, Any]]:
    return [line["event"] for line in lines if "event" in line]


def types(lines: Lines) -> list[str]:
    return [ev["type"] for ev in events(lines)]


def assert_gapless(lines: Lines, start: int) -> None:
    assert [line["rseq"] for line in lines] == list(range(start + 1, start + 1 + len(lines)))


# -- fixtures --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def base() -> Iterator[Path]:
    # unix socket paths must stay under 108 bytes; pytest's tmp_path is too deep (and
    # 0700, which the agent user cannot enter)
    path = Path(tempfile.mkdtemp(prefix="agr-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def model() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer(scripts=SCRIPTS, api_key=KEY) as server:
        yield server


@pytest.fixture(scope="module")
def relay(base: Path, model: ScriptedModelServer) -> Iterator[UnixRelay]:
    with UnixRelay(base / "gw.sock", model.port) as relay:
        yield relay


@pytest.fixture(scope="module")
def startup(base: Path, relay: UnixRelay) -> Iterator[tuple[Runner, list[str], float]]:
    """The shared runner; its model traffic goes through a unix socket, like a gateway's."""
    runner = Runner(base, f"unix:{relay.path}", _config(), "main")
    runner.start()
    try:
        seen, seconds = runner.wait_ok()
        yield runner, seen, seconds
    finally:
        code = runner.stop()
        assert code == 0, runner.log_text()


@pytest.fixture
def runner(startup: tuple[Runner, list[str], float]) -> Runner:
    return startup[0]


# -- tests -----------------------------------------------------------------------------


@pytest.mark.cli
def test_health_starting_then_ok(startup: tuple[Runner, list[str], float]) -> None:
    runner, seen, seconds = startup
    assert seen[0] == "starting" and seen[-1] == "ok", seen
    print(f"runner start → health ok: {seconds:.2f} s")
    body = runner.health()
    assert body is not None
    assert body["busy"] is False and body["pid"] == runner.proc.pid  # type: ignore[union-attr]
    assert body["version"] == agcluster_jupyter.__version__


@pytest.mark.cli
async def test_full_turn_with_tools(
    runner: Runner, model: ScriptedModelServer, relay: UnixRelay
) -> None:
    async with runner.client() as client:
        cursor = await last_rseq(client)
        started = time.monotonic()
        lines = await run_turn(client, "Please build the greeting file")
        print(f"tool turn: {time.monotonic() - started:.2f} s")
    assert_gapless(lines, cursor)
    evs = events(lines)
    kinds = types(lines)
    assert kinds[0] == "status" and evs[0]["state"] == "busy"
    assert kinds[-2:] == ["status", "done"] and evs[-2]["state"] == "idle"
    assert kinds.count("done") == 1
    for kind in ("text_delta", "message", "tool_use", "tool_result", "todo_update", "result"):
        assert kind in kinds, kinds
    # stamped by the server, not the runner
    assert all(ev["seq"] == 0 and ev["session_id"] == "" for ev in evs)

    # the prompt comes first, as the user's message
    assert kinds[1] == "message" and evs[1]["role"] == "user"
    assert evs[1]["text"] == "Please build the greeting file"
    # the first model message: text + two TaskCreate calls = three events
    first = next(
        i for i, ev in enumerate(evs) if ev["type"] == "message" and ev["role"] == "assistant"
    )
    assert kinds[first : first + 3] == ["message", "tool_use", "tool_use"]
    assert evs[first]["text"] == "I'll plan, then write and edit the file."
    deltas = "".join(ev["text"] for ev in evs[:first] if ev["type"] == "text_delta")
    assert deltas == evs[first]["text"]

    tools = [ev["name"] for ev in evs if ev["type"] == "tool_use"]
    assert tools == [
        "TaskCreate",
        "TaskCreate",
        "TaskUpdate",
        "Write",
        "TaskUpdate",
        "Edit",
        "Bash",
    ]
    results = {ev["tool_use_id"]: ev for ev in evs if ev["type"] == "tool_result"}
    uses = {ev["tool_use_id"]: ev for ev in evs if ev["type"] == "tool_use"}
    assert set(results) == set(uses)
    assert not any(r["is_error"] for r in results.values()), results
    bash = next(r for i, r in results.items() if uses[i]["name"] == "Bash")
    expected_uid = pwd.getpwnam(AGENT_USER).pw_uid if IS_ROOT else os.geteuid()
    assert bash["output"].split() == ["hello", "runner", str(expected_uid)]

    todos = [ev["todos"] for ev in evs if ev["type"] == "todo_update"]
    assert todos[0] == [
        {"content": "Write hello.txt", "status": "pending", "activeForm": "Writing hello.txt"}
    ]
    assert [t["status"] for t in todos[-1]] == ["completed", "pending"]
    assert [t["content"] for t in todos[-1]] == ["Write hello.txt", "Personalise it"]
    assert len(todos) == 4  # create, create, in_progress, completed

    result = next(ev for ev in evs if ev["type"] == "result")
    assert result["is_error"] is False and result["num_turns"] >= 4
    assert result["sdk_session_id"] and result["usage"]["output_tokens"] > 0
    assert "error" not in kinds
    assert (runner.workspace / "hello.txt").read_text() == "hello runner\n"
    if IS_ROOT:
        assert (runner.workspace / "hello.txt").stat().st_uid == expected_uid
    # through the unix "gateway", with our session token as the API key
    assert relay.connections >= 1
    assert all(r.headers.get("x-api-key") == KEY for r in model.message_requests)


@pytest.mark.cli
async def test_sub_agent_events_carry_the_parent_id(runner: Runner) -> None:
    async with runner.client() as client:
        lines = await run_turn(client, "Please delegate the listing")
    evs = events(lines)
    [agent] = [e for e in evs if e["type"] == "tool_use" and e["name"] == "Agent"]
    assert agent["parent_tool_use_id"] is None
    inner = [e for e in evs if e.get("parent_tool_use_id") == agent["tool_use_id"]]
    # the sub-agent's prompt, its Bash call and that call's result, all inside the turn
    assert [e["type"] for e in inner] == ["message", "tool_use", "tool_result"]
    assert inner[0]["role"] == "user" and "list the workspace files" in inner[0]["text"]
    assert inner[1]["name"] == "Bash" and inner[2]["is_error"] is False
    [outcome] = [e for e in evs if e.get("tool_use_id") == agent["tool_use_id"]][1:]
    assert outcome["type"] == "tool_result" and outcome["parent_tool_use_id"] is None
    assert "Listed." in outcome["output"]
    assert evs.index(outcome) > evs.index(inner[-1])
    assert [e["text"] for e in evs if e["type"] == "message" and e["role"] == "assistant"] == [
        "The lister is done."
    ]
    assert types(lines)[-1] == "done" and types(lines).count("result") == 1


@pytest.mark.cli
async def test_busy_conflict_then_interrupt(runner: Runner) -> None:
    async with runner.client() as client:
        cursor = await last_rseq(client)
        assert (await client.post("/turns", json={"message": "take your time"})).status_code == 202
        # wait until the slow Bash call is running
        await collect(client, cursor, until=is_type("tool_use"))
        second = await client.post("/turns", json={"message": "say hi"})
        assert second.status_code == 409
        assert second.json() == {
            "message": "a turn is already running; interrupt it or wait for done"
        }
        assert (await client.get("/health")).json()["busy"] is True

        started = time.monotonic()
        response = await client.post("/interrupt")
        assert response.json() == {"interrupted": True}
        lines = await collect(client, cursor, timeout=10)
        took = time.monotonic() - started
        print(f"interrupt → done: {took:.2f} s")
        assert took < 3
        kinds = types(lines)
        assert kinds.count("done") == 1 and kinds[-1] == "done"
        error = next(ev for ev in events(lines) if ev["type"] == "error")
        assert error == {**error, "code": "interrupted", "message": "the turn was interrupted"}
        killed = next(ev for ev in events(lines) if ev["type"] == "tool_result")
        assert killed["is_error"] is True
        assert (await client.post("/interrupt")).json() == {"interrupted": False}
        # the same client takes the next turn
        lines = await run_turn(client, "say hi")
        assert "Hi there." in [ev.get("text") for ev in events(lines)]


def _children(pid: int) -> list[tuple[int, str]]:
    """(pid, command name) of the direct children of ``pid``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            name = stat[stat.index("(") + 1 : stat.rindex(")")]
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
                found.append((int(entry), name))
    return found


@pytest.mark.cli
async def test_a_dead_cli_ends_the_turn_and_comes_back(runner: Runner) -> None:
    assert runner.proc is not None
    async with runner.client() as client:
        cursor = await last_rseq(client)
        await client.post("/turns", json={"message": "take your time"})
        await collect(client, cursor, until=is_type("tool_use"))
        [cli] = [pid for pid, name in _children(runner.proc.pid) if name == "claude"]
        os.kill(cli, signal.SIGKILL)
        lines = await collect(client, cursor, timeout=20)
        error = next(ev for ev in events(lines) if ev["type"] == "error")
        assert error["code"] in {"cli_exited", "cli_connection"}, error
        assert types(lines)[-2:] == ["status", "done"]
        # it reconnects on its own, resuming the same conversation
        for _ in range(600):
            health = (await client.get("/health")).json()
            if health["status"] == "ok":
                break
            assert health["status"] == "starting", health
            await asyncio.sleep(0.05)
        assert health["status"] == "ok"
        lines = await run_turn(client, "say hi")
        assert "Hi there." in [ev.get("text") for ev in events(lines)]


@pytest.mark.cli
async def test_upstream_failure_surfaces_in_seconds(runner: Runner) -> None:
    async with runner.client() as client:
        started = time.monotonic()
        lines = await run_turn(client, "upstream trouble ahead", timeout=60)
        took = time.monotonic() - started
    print(f"upstream 529 → error + done: {took:.2f} s")
    evs = events(lines)
    retries = [e["detail"] for e in evs if e["type"] == "status" and e["detail"]]
    assert len(retries) == 2 and retries[0].startswith("model API 529; retry 1/2")
    [error] = [e for e in evs if e["type"] == "error"]
    assert error["code"] == "api_error_529" and "529" in error["message"]
    assert types(lines)[-2:] == ["status", "done"]
    assert took < 20


@pytest.mark.cli
async def test_bad_requests(runner: Runner) -> None:
    async with runner.client() as client:
        for body in ({}, {"message": ""}, {"message": 5}, {"message": "   "}):
            response = await client.post("/turns", json=body)
            assert response.status_code == 400, body
            assert "message" in response.json()
        response = await client.post("/turns", content=b"{not json")
        assert response.status_code == 400
        response = await client.post("/permissions/nope", json={"decision": "allow"})
        assert response.status_code == 404
        response = await client.post("/permissions/nope", json={"decision": "maybe"})
        assert response.status_code == 400
        assert (await client.get("/events", params={"after": "x"})).status_code == 400
        missing = await client.get("/nowhere")
        assert missing.status_code == 404 and "no such endpoint" in missing.json()["message"]
        wrong = await client.get("/turns")
        assert wrong.status_code == 405 and wrong.json() == {"message": "Method Not Allowed"}


@pytest.mark.cli
async def test_two_subscribers_and_replay(runner: Runner) -> None:
    async with runner.client() as client:
        cursor = await last_rseq(client)
        one = asyncio.create_task(collect(client, cursor))
        two = asyncio.create_task(collect(client, cursor))
        await asyncio.sleep(0.2)  # both subscribed before the turn starts
        assert (await client.post("/turns", json={"message": "say hi"})).status_code == 202
        lines_one, lines_two = await asyncio.gather(one, two)
        assert lines_one == lines_two
        assert_gapless(lines_one, cursor)

        # after=N replays from N+1, also while another stream is open
        mid = cursor + len(lines_one) // 2
        replay = await collect(client, mid)
        assert replay == lines_one[len(lines_one) // 2 :]


@pytest.mark.cli
async def test_replay_from_zero_and_stale_cursor(runner: Runner) -> None:
    async with runner.client() as client:
        top = await last_rseq(client)
        assert top > 0
        lines = await collect(client, 0, until=lambda line: line["rseq"] == top)
        assert_gapless(lines, 0)
        assert events(lines)[0] == {
            "type": "status",
            "state": "ready",
            "detail": "",
            "seq": 0,
            "session_id": "",
            "ts": "",
        }
        # a cursor from an earlier runner process (beyond last_rseq) starts over from 1
        lines = await collect(client, top + 1000, until=lambda line: line["rseq"] == 1)
        assert lines[0] == {"rseq": 0, "reset": True}
        assert lines[1]["rseq"] == 1


@pytest.mark.cli
async def test_permission_allow_and_deny(base: Path, model: ScriptedModelServer) -> None:
    runner = Runner(base, model.url, _config(permission_mode="default"), "perm")
    runner.start()
    try:
        await asyncio.to_thread(runner.wait_ok)
        async with runner.client() as client:
            for decision in ("deny", "allow"):
                cursor = await last_rseq(client)
                response = await client.post("/turns", json={"message": "this needs approval"})
                assert response.status_code == 202
                lines = await collect(client, cursor, until=is_type("permission_request"))
                request = events(lines)[-1]
                assert request["tool_name"] == "Bash"
                assert request["input"]["command"] == "echo approved > perm.txt"
                assert not (runner.workspace / "perm.txt").exists()
                health = (await client.get("/health")).json()
                assert health["pending_permissions"] == [request["request_id"]]
                body = {"decision": decision, "message": "not today"}
                answer = await client.post(f"/permissions/{request['request_id']}", json=body)
                assert answer.status_code == 200, answer.text
                lines = await collect(client, cursor)
                result = next(ev for ev in events(lines) if ev["type"] == "tool_result")
                if decision == "deny":
                    assert result["is_error"] is True and "not today" in result["output"]
                    assert not (runner.workspace / "perm.txt").exists()
                else:
                    assert result["is_error"] is False
                    assert (runner.workspace / "perm.txt").read_text() == "approved\n"
                again = await client.post(f"/permissions/{request['request_id']}", json=body)
                assert again.status_code == 404
            (runner.workspace / "perm.txt").unlink()

            # an interrupt denies the waiting request and ends the turn
            cursor = await last_rseq(client)
            await client.post("/turns", json={"message": "this needs approval"})
            await collect(client, cursor, until=is_type("permission_request"))
            assert (await client.post("/interrupt")).json() == {"interrupted": True}
            lines = await collect(client, cursor, timeout=10)
            assert types(lines)[-1] == "done"
            assert (await client.get("/health")).json()["pending_permissions"] == []

            # shutdown while a request waits: the turn ends, the streams close, exit 0
            cursor = await last_rseq(client)
            await client.post("/turns", json={"message": "this needs approval"})
            await collect(client, cursor, until=is_type("permission_request"))
            stream = asyncio.create_task(collect(client, cursor, until=lambda line: False))
            await asyncio.sleep(0.1)
            assert (await client.post("/shutdown")).json() == {"stopping": True}
            lines = await asyncio.wait_for(stream, 20)  # ends when the runner closes it
            assert types(lines)[-2:] == ["status", "done"]
            assert runner.proc is not None
            assert await asyncio.to_thread(runner.proc.wait, 30) == 0
            assert not runner.socket.exists()
        assert not (runner.workspace / "perm.txt").exists()
    finally:
        assert runner.stop() == 0, runner.log_text()


@pytest.mark.cli
async def test_failed_start_explains_why(base: Path, model: ScriptedModelServer) -> None:
    runner = Runner(base, model.url, _config(), "bogus")
    runner.start("--resume", "11111111-2222-3333-4444-555555555555")
    try:
        for _ in range(600):
            health = runner.health()
            if health is not None and health["status"] == "failed":
                break
            await asyncio.sleep(0.05)
        assert health is not None and health["status"] == "failed"
        # the CLI's own words, from its stderr
        assert "No conversation found" in health["detail"]
        async with runner.client() as client:
            response = await client.post("/turns", json={"message": "say hi"})
            assert response.status_code == 409
            assert "No conversation found" in response.json()["message"]
            lines = await collect(client, 0, until=lambda line: True)
            assert events(lines)[0]["state"] == "failed"
    finally:
        assert runner.stop() == 0, runner.log_text()


@pytest.mark.cli
async def test_unwritable_workspace_fails_health(base: Path, model: ScriptedModelServer) -> None:
    runner = Runner(base, model.url, _config(), "ro")
    if IS_ROOT:
        os.chown(runner.workspace, 0, 0)  # root's, 0755: the agent user cannot write
    else:
        runner.workspace.chmod(0o555)
    runner.start()
    try:
        for _ in range(600):
            health = runner.health()
            if health is not None and health["status"] != "starting":
                break
            await asyncio.sleep(0.05)
        assert health is not None and health["status"] == "failed"
        assert "not writable" in health["detail"] and str(runner.workspace) in health["detail"]
    finally:
        runner.workspace.chmod(0o755)
        assert runner.stop() == 0, runner.log_text()


@pytest.mark.cli
async def test_resume_keeps_the_conversation(base: Path, model: ScriptedModelServer) -> None:
    runner = Runner(base, model.url, _config(), "resume")
    runner.start()
    await asyncio.to_thread(runner.wait_ok)
    async with runner.client() as client:
        lines = await run_turn(client, "Please remember the word pelican")
    session_id = next(ev for ev in events(lines) if ev["type"] == "result")["sdk_session_id"]
    top = lines[-1]["rseq"]
    runner.kill()  # no goodbye: the transcript must already be on disk

    runner.start("--resume", session_id)
    await asyncio.to_thread(runner.wait_ok)
    try:
        async with runner.client() as client:
            assert (await client.get("/health")).json()["sdk_session_id"] == session_id
            # the count goes on, so the server's cursor stays valid across the restart
            [ready] = await collect(client, top, until=lambda line: True)
            assert ready["rseq"] == top + 1 and ready["event"]["state"] == "ready"
            before = len(model.message_requests)
            lines = await run_turn(client, "Now, which word did I say?")
            assert "result" in types(lines)
            assert next(ev for ev in events(lines) if ev["type"] == "result")["sdk_session_id"]
        request = model.message_requests[before]
        history = json.dumps(request.body["messages"])
        assert "remember the word pelican" in history and "Noted." in history
    finally:
        assert runner.stop() == 0, runner.log_text()


@pytest.mark.cli
async def test_tcp_needs_the_bearer_token(base: Path, model: ScriptedModelServer) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    runner = Runner(base, model.url, _config(), "tcp")
    token = "runner-bearer-token-for-tests"
    runner.start(
        listen=f"tcp:127.0.0.1:{port}",
        env={"AGCLUSTER_RUNNER_TOKEN_SHA256": token_digest(token)},
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            for _ in range(300):
                try:
                    response = await client.get("/health")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
            assert response.status_code == 401
            assert response.json()["message"]
            for headers in ({"Authorization": "Bearer wrong"}, {"Authorization": token}):
                assert (await client.get("/health", headers=headers)).status_code == 401
            assert (await client.post("/turns", json={"message": "hi"})).status_code == 401
            # the checkpoint and fork hand-over routes too, streamed bodies included
            for method, path in [
                ("GET", "/checkpoints"),
                ("POST", "/checkpoints/1/begin"),
                ("POST", "/checkpoints/1/restore"),
                ("POST", "/checkpoints/undo"),
                ("GET", "/checkpoints/export"),
                ("PUT", "/checkpoints/seed"),
                ("POST", "/conversation/export"),
                ("PUT", "/conversation/import?id=x"),
            ]:
                refused = await client.request(method, path, content=b"{}")
                assert refused.status_code == 401, (method, path)
            ok = await client.get("/health", headers={"Authorization": f"Bearer {token}"})
            assert ok.status_code == 200 and ok.json()["status"] in {"starting", "ok"}
            shutdown = await client.post("/shutdown", headers={"Authorization": f"Bearer {token}"})
            assert shutdown.status_code == 200
        assert runner.proc is not None
        assert await asyncio.to_thread(runner.proc.wait, 30) == 0
    finally:
        runner.stop()


@pytest.mark.cli
@pytest.mark.parametrize("listen", ["tcp:127.0.0.1:0", "unix"])
def test_no_control_token_digest_refuses_to_start(
    base: Path, model: ScriptedModelServer, listen: str
) -> None:
    runner = Runner(base, model.url, _config(), "notoken")
    runner.start(
        listen=None if listen == "unix" else listen,
        env={"AGCLUSTER_RUNNER_TOKEN_SHA256": "not-a-digest"},
    )
    assert runner.proc is not None
    assert runner.proc.wait(30) == 2
    assert "AGCLUSTER_RUNNER_TOKEN_SHA256" in runner.log_text()


async def test_forwarder_pipes_to_a_unix_socket(base: Path) -> None:
    path = str(base / "echo.sock")

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.read()  # until the forwarded half-close
        writer.write(data.upper())
        await writer.drain()
        writer.close()

    server = await asyncio.start_unix_server(echo, path)
    forwarder = Forwarder(path)
    port = await forwarder.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"hello " * 50_000)
        await writer.drain()
        writer.write_eof()
        assert await reader.read() == b"HELLO " * 50_000
        writer.close()
    finally:
        await forwarder.close()
        server.close()
        await server.wait_closed()


class _NoCLI:
    """Stands in for ClaudeSDKClient where a test needs the channel, not the agent."""

    def __init__(self, options: Any) -> None:
        self.options = options

    async def connect(self) -> None:
        pass

    async def disconnect(self) -> None:
        pass


async def test_idle_streams_get_heartbeats(base: Path) -> None:
    workspace, state = base / "hb-ws", base / "hb-state"
    workspace.mkdir()
    settings = RunnerSettings(
        config=AgentConfig(id="hb"),
        workspace=workspace,
        state_dir=state,
        base_url="http://127.0.0.1:9",
        session_token="t",
    )
    runner = AgentRunner(settings, client_factory=_NoCLI)  # type: ignore[arg-type]
    app = make_app(
        runner, digest=token_digest(CONTROL_TOKEN), on_shutdown=lambda: None, heartbeat=0.1
    )
    server = HTTPServer(app)
    server.add_socket(bind_unix_socket(str(base / "hb.sock")))
    runner.start()
    try:
        transport = httpx.AsyncHTTPTransport(uds=str(base / "hb.sock"))
        headers = {"Authorization": f"Bearer {CONTROL_TOKEN}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://runner", headers=headers
        ) as client:
            chunks: list[bytes] = []

            async def read() -> None:
                async with client.stream("GET", "/events", params={"after": 1}) as response:
                    async for chunk in response.aiter_raw():
                        chunks.append(chunk)

            task = asyncio.create_task(read())
            await asyncio.sleep(0.45)
            assert runner.health()["status"] == "ok"
            # the subscription newline, then one per idle 0.1 s
            assert 3 <= b"".join(chunks).count(b"\n") <= 6 and not b"".join(chunks).strip()
            await runner.close()  # ends the stream
            await asyncio.wait_for(task, 5)
    finally:
        await runner.close()
        server.stop()
        await server.close_all_connections()
