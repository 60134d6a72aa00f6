"""The scripted Anthropic Messages API server (tornado), runnable in a background thread
with its own event loop or in the caller's loop.

Size: one tornado app, the Messages API's streaming and non-streaming shapes.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml
from tornado import netutil, web
from tornado.http1connection import HTTP1Connection
from tornado.httpserver import HTTPServer
from tornado.iostream import StreamClosedError

from .script import Fault, Reply, Script, choose_reply, latest_prompt, load_script, parse_script
from .sse import (
    content_blocks,
    error_body,
    estimate_tokens,
    format_sse,
    message_json,
    new_id,
    output_tokens,
    stream_events,
)

__all__ = [
    "DEMO_SCRIPT",
    "DeltaHook",
    "RecordedRequest",
    "ScriptSource",
    "ScriptedModelServer",
    "demo_script",
    "load_scripts",
]

JSON = dict[str, Any]
ScriptSource = Script | str | Path | list[Any] | Mapping[str, Any] | None
DEMO_SCRIPT = "demo.yaml"


def demo_script() -> Script:
    """The demo script shipped in ``agcluster_jupyter/testing/scripts/demo.yaml``."""
    # Read through importlib.resources so it also works from a zipped install.
    text = (resources.files(__package__) / "scripts" / DEMO_SCRIPT).read_text(encoding="utf-8")
    return parse_script(yaml.safe_load(text), origin=DEMO_SCRIPT)


def load_scripts(source: ScriptSource | Iterable[ScriptSource]) -> Script:
    """A script from a file path, a Script, parsed data, or a list of paths/Scripts
    (concatenated, earlier scenarios first)."""
    if isinstance(source, (str, Path)):
        return load_script(source)
    if (
        isinstance(source, list)
        and source
        and all(isinstance(s, (str, Path, Script)) for s in source)
    ):
        combined = Script()
        for item in source:
            combined = combined + load_scripts(item)
        return combined
    return parse_script(source)


@dataclass
class RecordedRequest:
    """One request as the server saw it; ``reply`` is what the script chose, ``status``
    what was answered (None while it is being served)."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    status: int | None = None
    reply: Reply | None = None
    info: JSON = field(default_factory=dict)

    @property
    def tool_names(self) -> list[str]:
        tools = self.body.get("tools") if isinstance(self.body, dict) else None
        return [str(t.get("name")) for t in tools or [] if isinstance(t, dict)]

    @property
    def prompt(self) -> str:
        messages = self.body.get("messages") if isinstance(self.body, dict) else None
        return latest_prompt(messages or [])


#: ``on_delta(request, index, data)``: one content delta of a streamed reply (``index``
#: counts from 0 within the response, ``data`` is the ``content_block_delta`` event) is
#: about to be written to the socket. Runs on the server's event loop: keep it quick.
DeltaHook = Callable[[RecordedRequest, int, JSON], None]


class _Handler(web.RequestHandler):
    """Every path lands here; only POST /v1/messages (+ count_tokens) does real work."""

    model_server: ScriptedModelServer
    _current: RecordedRequest | None = None

    def initialize(self, model_server: ScriptedModelServer) -> None:
        self.model_server = model_server

    def check_xsrf_cookie(self) -> None:
        pass

    def set_default_headers(self) -> None:
        self.clear_header("Server")
        self.set_header("request-id", new_id("req"))

    def _error(self, status: int, message: str, retry: bool | None = None) -> None:
        self.set_status(status)
        if retry is False:
            self.set_header("x-should-retry", "false")
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(error_body(status, message)))

    def head(self, path: str) -> None:
        # The CLI's connectivity probe (HEAD /api/hello) when non-essential traffic is on.
        self._record()
        self.finish()

    def get(self, path: str) -> None:
        self._record()
        self._error(404, f"no such endpoint: GET /{path}")

    async def post(self, path: str) -> None:
        await self._post(path, self._record())

    def flush(self, include_footers: bool = False) -> Any:
        # Noted before the bytes leave: a test may read the record as soon as it has them.
        if self._current is not None:
            self._current.status = self.get_status()
        return super().flush(include_footers)

    async def _post(self, path: str, record: RecordedRequest) -> None:
        server = self.model_server
        if not server.accepts_key(self._api_key()):
            self._error(401, "invalid x-api-key", retry=False)
            return
        if path not in ("v1/messages", "v1/messages/count_tokens"):
            self._error(404, f"no such endpoint: POST /{path}")
            return
        body = record.body
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            self._error(400, "messages: field required (a JSON body with a messages list)")
            return
        input_tokens = estimate_tokens({k: body.get(k) for k in ("system", "messages", "tools")})
        if path.endswith("count_tokens"):
            self.finish({"input_tokens": input_tokens})
            return
        reply = choose_reply(server.script, body)
        record.reply = reply
        fault = server.take_fault(record, reply)
        if fault.status is not None:
            self._error(fault.status, fault.message or f"scripted fault: HTTP {fault.status}")
            return
        model = str(body.get("model") or "scripted-model")
        message_id = new_id("msg")
        content = content_blocks(reply)
        # What the usage fields say, so metering tests can compare against it.
        record.info["usage"] = {
            "input_tokens": input_tokens,
            "output_tokens": output_tokens(content),
        }
        if not body.get("stream"):
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.broken_after is not None:
                record.info["broken"] = True
                self.detach().close()  # no response at all: the client sees a hang-up
                return
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps(message_json(content, model, message_id, input_tokens)))
            return
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        # Each event leaves when flushed, as from a streaming API: with Nagle's algorithm a
        # small write waits for the ACK of the previous one (delayed up to ~40 ms).
        if isinstance(self.request.connection, HTTP1Connection):
            self.request.connection.stream.set_nodelay(True)
        deltas = 0
        try:
            for event, data in stream_events(content, model, message_id, input_tokens):
                if event == "content_block_delta":
                    if fault.broken_after is not None and deltas >= fault.broken_after:
                        record.info["broken"] = True
                        self.detach().close()  # mid-body: the client sees a cut stream
                        return
                    if fault.delay:
                        await asyncio.sleep(fault.delay)
                    deltas += 1
                    if server.on_delta is not None:
                        server.on_delta(record, deltas - 1, data)
                self.write(format_sse(event, data))
                await self.flush()
        except StreamClosedError:
            record.info["client_closed"] = True  # e.g. an interrupt aborted the request
            return
        self.finish()

    def _api_key(self) -> str:
        key = self.request.headers.get("x-api-key", "")
        if not key:
            auth = self.request.headers.get("Authorization", "")
            if auth.lower().startswith("bearer "):
                key = auth[7:].strip()
        return key

    def _record(self) -> RecordedRequest:
        raw = self.request.body
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
        record = RecordedRequest(
            method=self.request.method or "",
            path=self.request.uri or "",
            headers={k.lower(): v for k, v in self.request.headers.get_all()},
            body=body,
        )
        self.model_server.record(record)
        self._current = record
        return record

    def log_exception(self, *args: Any) -> None:
        # Faults and hang-ups are the point of this server; do not spam test logs.
        pass


class ScriptedModelServer:
    """An Anthropic-compatible Messages API that plays scripts.

    ``scripts``: a Script, a YAML/JSON path, parsed data, a list of those; None = the
    demo script. ``api_key``: the accepted key, several keys, or None = any non-empty key.
    ``on_delta``: called as each streamed content delta leaves (see :data:`DeltaHook`),
    e.g. to timestamp it.

    Use ``with ScriptedModelServer(...) as server:`` (background thread with its own
    loop) or ``async with`` (serves in the running loop).
    """

    def __init__(
        self,
        scripts: ScriptSource | Iterable[ScriptSource] = None,
        api_key: str | Iterable[str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        on_delta: DeltaHook | None = None,
    ) -> None:
        self.on_delta = on_delta
        self.script = demo_script() if scripts is None else load_scripts(scripts)
        self.api_keys: frozenset[str] | None = (
            None
            if api_key is None
            else frozenset([api_key] if isinstance(api_key, str) else api_key)
        )
        self.host = host
        self.port = port
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._faults_served: dict[tuple[str, ...], int] = {}
        self._sockets: list[socket.socket] = []
        self._http: HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None

    # -- script and records ----------------------------------------------------------

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def message_requests(self) -> list[RecordedRequest]:
        """Only the ``POST /v1/messages`` requests (the model turns)."""
        return [
            r
            for r in self.requests
            if r.method == "POST" and r.path.split("?")[0] == "/v1/messages"
        ]

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def reset(self) -> None:
        """Forget recorded requests and served faults (the script stays)."""
        with self._lock:
            self._requests.clear()
            self._faults_served.clear()

    def add_scenarios(self, scripts: ScriptSource, *, first: bool = True) -> Script:
        """Add scenarios; by default before the existing ones so they win the match."""
        added = load_scripts(scripts)
        self.script = added + self.script if first else self.script + added
        return added

    def accepts_key(self, key: str) -> bool:
        if not key:
            return False
        return self.api_keys is None or key in self.api_keys

    def take_fault(self, request: RecordedRequest, reply: Reply) -> Fault:
        """The fault to apply now: one with ``times`` stops after that many servings per
        (session, prompt, step), so a retry of the same request then succeeds."""
        fault = reply.fault
        if not fault.is_active or fault.times is None:
            return fault
        session = request.headers.get("x-claude-code-session-id", "")
        key = (session, request.prompt, reply.scenario, str(reply.step))
        with self._lock:
            served = self._faults_served.get(key, 0)
            if served >= fault.times:
                return Fault()
            self._faults_served[key] = served + 1
        return fault

    def client_env(
        self, config_dir: str | Path | None = None, tmp_dir: str | Path | None = None
    ) -> dict[str, str]:
        """Environment for a claude CLI that should talk to this server only, fail fast
        and keep its state in the given directories."""
        key = next(iter(sorted(self.api_keys))) if self.api_keys else "scripted-model-key"
        env = {
            "ANTHROPIC_BASE_URL": self.url,
            "ANTHROPIC_API_KEY": key,
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "CLAUDE_CODE_MAX_RETRIES": "0",
        }
        if config_dir is not None:
            env["CLAUDE_CONFIG_DIR"] = str(config_dir)
        if tmp_dir is not None:
            env["CLAUDE_CODE_TMPDIR"] = str(tmp_dir)
        return env

    # -- serving -----------------------------------------------------------------------

    def _bind(self) -> None:
        # Bound in the caller's thread so .url is right as soon as start() returns.
        self._sockets = netutil.bind_sockets(self.port, address=self.host)
        self.port = int(self._sockets[0].getsockname()[1])

    def _listen(self) -> None:
        # No access log: fault statuses are expected and would read as warnings.
        app = web.Application(
            [(r"/(.*)", _Handler, {"model_server": self})], log_function=lambda _: None
        )
        self._http = HTTPServer(app, idle_connection_timeout=60)
        self._http.add_sockets(self._sockets)

    async def _close(self) -> None:
        if self._http is not None:
            self._http.stop()
            await self._http.close_all_connections()
            self._http = None
        for sock in self._sockets:
            sock.close()
        self._sockets = []

    async def start_async(self) -> ScriptedModelServer:
        """Serve in the running event loop."""
        self._bind()
        self._listen()
        return self

    async def stop_async(self) -> None:
        await self._close()

    def start(self) -> ScriptedModelServer:
        """Serve from a daemon thread with its own event loop; returns once listening."""
        if self._thread is not None:
            raise RuntimeError("ScriptedModelServer is already running")
        self._bind()
        ready = threading.Event()
        failure: list[BaseException] = []

        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop_event = asyncio.Event()
            try:
                self._listen()
            except BaseException as e:  # noqa: BLE001 - reported to start()'s caller
                failure.append(e)
                ready.set()
                return
            ready.set()
            await self._stop_event.wait()
            await self._close()

        self._thread = threading.Thread(
            target=asyncio.run, args=(main(),), name=f"scripted-model:{self.port}", daemon=True
        )
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]
        return self

    def stop(self, timeout: float = 5.0) -> None:
        thread, loop, stop_event = self._thread, self._loop, self._stop_event
        if thread is None or loop is None or stop_event is None:
            return
        loop.call_soon_threadsafe(stop_event.set)
        thread.join(timeout)
        self._thread = self._loop = self._stop_event = None

    def __enter__(self) -> ScriptedModelServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> ScriptedModelServer:
        return await self.start_async()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop_async()

    def __repr__(self) -> str:
        return f"<ScriptedModelServer {self.url} scenarios={len(self.script.scenarios)}>"
