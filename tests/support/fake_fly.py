"""A fake of the Fly Machines API (the calls the ``fly`` provider makes), for tests.

Serve it through ``httpx.MockTransport(FakeFly(...).handle)`` (or ``.transport()``).  It
speaks the documented JSON (``https://api.machines.dev/v1``) and is strict about it:

- every request needs ``Authorization: Bearer <token>`` (401 otherwise), an unknown app,
  machine or volume is a 404, errors are ``{"error": "..."}``;
- bodies with unknown fields, or without the fields the docs require, are a 400;
- machines go ``created`` → ``started`` (after ``boot_delay`` s; never while
  ``hold_boot``) → ``stopped`` / ``suspended`` → ``started`` … → ``destroyed``;
- ``GET …/wait?state=S&timeout=N`` blocks up to N s (1–60) and answers 408 when the
  machine did not reach S in time;
- ``fail_next`` holds status codes the next requests answer with (e.g. ``[503, 503]``).

With a ``node`` (:class:`~.fake_node.LocalNode`) a started machine runs its real
``init.cmd`` with its ``env``, its volumes as folders (root-owned, as Fly mounts them) and
its ``private_ip`` a loopback address of its own; stop, suspend and destroy end the
process, start runs it again, an exit makes the machine ``stopped``.  ``serve()`` puts the
API on a local HTTP port (for a provider built by a Jupyter server, not by the test).

Endpoints: ``GET /apps/{app}``; ``GET, POST /apps/{app}/machines`` (list filters by
``metadata.KEY=VALUE``); ``GET, DELETE /apps/{app}/machines/{id}`` (``?force=true``);
``GET …/{id}/wait``; ``POST …/{id}/stop|suspend|start``; ``GET, POST
/apps/{app}/volumes``; ``GET, DELETE /apps/{app}/volumes/{id}``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from tornado import httpserver, web
from tornado.netutil import bind_sockets

from .fake_node import LocalNode

__all__ = ["FakeFly"]

_MACHINE_FIELDS = {
    "name",
    "region",
    "config",
    "skip_launch",
    "skip_service_registration",
    "lease_ttl",
    "lsvd",
}
_CONFIG_FIELDS = {
    "image",
    "guest",
    "env",
    "init",
    "mounts",
    "metadata",
    "restart",
    "auto_destroy",
    "services",
    "checks",
    "files",
    "processes",
    "schedule",
    "stop_config",
    "dns",
    "metrics",
    "statics",
    "standbys",
    "size",
    "containers",
}
_GUEST_FIELDS = {"cpu_kind", "cpus", "memory_mb", "gpus", "gpu_kind", "kernel_args"}
_INIT_FIELDS = {"cmd", "entrypoint", "exec", "tty", "swap_size_mb", "kernel_args"}
_MOUNT_FIELDS = {"volume", "path", "name", "size_gb", "encrypted", "extend_threshold_percent"}
_RESTART_FIELDS = {"policy", "max_retries", "gpu_bid_price"}
_VOLUME_FIELDS = {
    "name",
    "region",
    "size_gb",
    "encrypted",
    "snapshot_id",
    "snapshot_retention",
    "require_unique_zone",
    "unique_zone_app_wide",
    "fstype",
    "compute",
    "source_volume_id",
}
_VOLUME_NAME = re.compile(r"^[a-z0-9_]{1,30}$")
_WAIT_STATES = {"started", "stopped", "suspended", "destroyed"}


class _Reply(Exception):
    def __init__(self, status: int, error: str) -> None:
        super().__init__(error)
        self.status = status
        self.error = error


def _fields(body: Any, where: str, allowed: set[str], required: set[str]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise _Reply(400, f"{where} must be a JSON object")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise _Reply(400, f"{where}: unknown field(s) {', '.join(unknown)}")
    missing = sorted(required - set(body))
    if missing:
        raise _Reply(400, f"{where}: missing required field(s) {', '.join(missing)}")
    return body


@dataclass
class FakeMachine:
    id: str
    name: str
    region: str
    config: dict[str, Any]
    instance_id: str
    state: str = "created"
    boot_at: float = 0.0
    created_at: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ"))
    events: list[dict[str, Any]] = field(default_factory=list)
    private_ip: str = ""

    def to_json(self, app: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "state": self.state,
            "region": self.region,
            "instance_id": self.instance_id,
            "private_ip": self.private_ip or f"fdaa:0:1:a7b:1::{self.id[-4:]}",
            "config": self.config,
            "image_ref": {"repository": self.config["image"]},
            "created_at": self.created_at,
            "updated_at": self.created_at,
            "events": list(self.events),
        }


@dataclass
class FakeVolume:
    id: str
    name: str
    region: str
    size_gb: int
    encrypted: bool
    attached_machine_id: str | None = None
    state: str = "created"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "state": self.state,
            "size_gb": self.size_gb,
            "region": self.region,
            "zone": "a1b2",
            "encrypted": self.encrypted,
            "attached_machine_id": self.attached_machine_id,
            "attached_alloc_id": None,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }


class FakeFly:
    """In-memory Fly Machines API for one or more apps."""

    def __init__(
        self,
        app: str = "agents",
        token: str = "fly-test-token",
        *,
        boot_delay: float = 0.02,
        regions: tuple[str, ...] = ("ams", "iad", "ord"),
        node: LocalNode | None = None,
    ) -> None:
        self.node = node
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: httpserver.HTTPServer | None = None
        if node is not None:
            node.on_exit = self._machine_exited
        self.apps = {app}
        self.token = token
        self.boot_delay = boot_delay
        self.regions = set(regions)
        self.hold_boot = False
        self.fail_next: list[int] = []
        self.machines: dict[str, FakeMachine] = {}
        self.volumes: dict[str, FakeVolume] = {}
        #: every request as (method, path with query)
        self.requests: list[tuple[str, str]] = []
        self._ids = itertools.count(1)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    # -- state ------------------------------------------------------------------------------

    def _tick(self, machine: FakeMachine) -> None:
        if (
            machine.state == "created"
            and not self.hold_boot
            and time.monotonic() >= machine.boot_at
        ):
            machine.state = "started"
            machine.events.append({"type": "start", "status": "started", "source": "flyd"})
            if self.node is not None:
                self._background(self._run(machine))

    # -- running machines on a node ----------------------------------------------------------

    def _background(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, machine: FakeMachine) -> None:
        node = self.node
        assert node is not None
        config = machine.config
        mounts = {
            m["path"]: node.volume(m["volume"], owned_by_agent=False)
            for m in config.get("mounts", [])
        }
        home = (config.get("env") or {}).get("HOME")
        if home:
            mounts[home] = node.scratch(f"{machine.id}-home")
        command = list((config.get("init") or {}).get("cmd") or [])
        try:
            await node.start(
                machine.id,
                command,
                dict(config.get("env") or {}),
                mounts,
                as_agent=False,  # Fly runs the image's command as root
                address=machine.private_ip,
            )
        except OSError as exc:
            machine.state = "stopped"
            machine.events.append({"type": "exit", "status": "failed", "error": str(exc)})

    def _halt(self, machine: FakeMachine) -> None:
        if self.node is not None:
            self._background(self.node.kill(machine.id))

    def _machine_exited(self, machine_id: str, code: int) -> None:
        machine = self.machines.get(machine_id)
        if machine is not None and machine.state == "started":
            machine.state = "stopped"
            machine.events.append(
                {
                    "type": "exit",
                    "status": "stopped",
                    "request": {"exit_event": {"exit_code": code}},
                }
            )

    async def serve(self) -> str:
        """Serve the API over local HTTP; its base URL (``http://127.0.0.1:PORT/v1``)."""
        fake = self

        class Front(web.RequestHandler):
            def check_xsrf_cookie(self) -> None:
                return

            async def _any(self) -> None:
                request = httpx.Request(
                    self.request.method or "GET",
                    "http://fly.fake" + (self.request.uri or "/"),
                    headers=dict(self.request.headers),
                    content=self.request.body or b"",
                )
                response = await fake.handle(request)
                self.set_status(response.status_code)
                self.set_header("Content-Type", "application/json")
                self.finish(response.content)

            get = post = delete = _any

        sockets = bind_sockets(0, "127.0.0.1")
        self._server = httpserver.HTTPServer(web.Application([(r"/.*", Front)]))
        self._server.add_sockets(sockets)
        return f"http://127.0.0.1:{sockets[0].getsockname()[1]}/v1"

    async def close(self) -> None:
        if self._server is not None:
            self._server.stop()
            await self._server.close_all_connections()
        # machines being started or stopped finish first: no process escapes the node
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=15)
        if self.node is not None:
            await self.node.close()

    def _machine(self, machine_id: str) -> FakeMachine:
        machine = self.machines.get(machine_id)
        if machine is None or machine.state == "destroyed":
            raise _Reply(404, f"machine {machine_id} not found")
        self._tick(machine)
        return machine

    def _volume(self, volume_id: str) -> FakeVolume:
        volume = self.volumes.get(volume_id)
        if volume is None:
            raise _Reply(404, f"volume {volume_id} not found")
        return volume

    def live_machines(self) -> list[FakeMachine]:
        return [m for m in self.machines.values() if m.state != "destroyed"]

    # -- the handler ------------------------------------------------------------------------

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append((request.method, request.url.raw_path.decode()))
        try:
            if request.headers.get("Authorization") != f"Bearer {self.token}":
                raise _Reply(401, "You must be authenticated to view this.")
            if self.fail_next:
                status = self.fail_next.pop(0)
                raise _Reply(status, f"injected failure {status}")
            status, body = await self._route(request)
        except _Reply as reply:
            status, body = reply.status, {"error": reply.error}
        return httpx.Response(status, json=body)

    async def _route(self, request: httpx.Request) -> tuple[int, Any]:
        parts = request.url.path.rstrip("/").split("/")
        # "", "v1", "apps", app, ...
        if parts[:3] != ["", "v1", "apps"] or len(parts) < 4:
            raise _Reply(404, "not found")
        app, rest, method = parts[3], parts[4:], request.method
        if app not in self.apps:
            raise _Reply(404, f"app {app} not found")
        query = request.url.params
        if not rest:
            if method == "GET":
                return 200, {"name": app, "organization": {"slug": "personal"}, "status": "ok"}
        elif rest[0] == "machines":
            return await self._machines(request, app, rest[1:], method, query)
        elif rest[0] == "volumes":
            return self._volumes(request, rest[1:], method)
        raise _Reply(404, "not found")

    def _json(self, request: httpx.Request) -> Any:
        try:
            return json.loads(request.content or b"null")
        except ValueError:
            raise _Reply(400, "the body is not JSON") from None

    async def _machines(
        self,
        request: httpx.Request,
        app: str,
        rest: list[str],
        method: str,
        query: httpx.QueryParams,
    ) -> tuple[int, Any]:
        if not rest:
            if method == "GET":
                wanted = {
                    k.removeprefix("metadata."): v
                    for k, v in query.multi_items()
                    if k.startswith("metadata.")
                }
                found = []
                for machine in self.live_machines():
                    self._tick(machine)
                    metadata = machine.config.get("metadata") or {}
                    if all(metadata.get(k) == v for k, v in wanted.items()):
                        found.append(machine.to_json(app))
                return 200, found
            if method == "POST":
                return 200, self._create_machine(app, self._json(request))
            raise _Reply(405, "method not allowed")
        machine = self._machine(rest[0])
        action = rest[1] if len(rest) > 1 else ""
        if not action:
            if method == "GET":
                return 200, machine.to_json(app)
            if method == "DELETE":
                force = query.get("force") == "true"
                if machine.state not in {"stopped", "suspended", "created", "failed"} and not force:
                    raise _Reply(412, "failed_precondition: machine is started; stop it or force")
                machine.state = "destroyed"
                self._halt(machine)
                for volume in self.volumes.values():
                    if volume.attached_machine_id == machine.id:
                        volume.attached_machine_id = None
                return 200, {"ok": True}
        elif action == "wait" and method == "GET":
            return await self._wait(machine, query)
        elif action in {"stop", "suspend", "start"} and method == "POST":
            previous = machine.state
            if action == "start":
                if previous not in {"stopped", "suspended", "created"}:
                    raise _Reply(412, f"failed_precondition: machine is {previous}")
                machine.state = "created"
                machine.boot_at = time.monotonic() + self.boot_delay
                self._tick(machine)
                return 200, {"previous_state": previous}
            if previous != "started":
                raise _Reply(412, f"failed_precondition: machine is {previous}, not started")
            machine.state = "stopped" if action == "stop" else "suspended"
            self._halt(machine)
            machine.events.append({"type": "exit", "status": machine.state, "source": "user"})
            return 200, {"ok": True}
        raise _Reply(404, "not found")

    def _create_machine(self, app: str, body: Any) -> dict[str, Any]:
        _fields(body, "body", _MACHINE_FIELDS, {"config"})
        config = _fields(body["config"], "config", _CONFIG_FIELDS, {"image"})
        region = body.get("region", "ams")
        if region not in self.regions:
            raise _Reply(400, f"region {region!r} is not a Fly region")
        if "guest" in config:
            guest = _fields(config["guest"], "config.guest", _GUEST_FIELDS, set())
            if guest.get("cpu_kind", "shared") not in {"shared", "performance"}:
                raise _Reply(400, "config.guest.cpu_kind must be shared or performance")
            cpus, memory = guest.get("cpus", 1), guest.get("memory_mb", 256)
            if not isinstance(cpus, int) or cpus < 1:
                raise _Reply(400, "config.guest.cpus must be a whole number of CPUs")
            if not isinstance(memory, int) or memory < 256 or memory % 256:
                raise _Reply(400, "config.guest.memory_mb must be a multiple of 256")
        for key in ("env", "metadata"):
            values = config.get(key, {})
            if not isinstance(values, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in values.items()
            ):
                raise _Reply(400, f"config.{key} must map strings to strings")
        if "init" in config:
            init = _fields(config["init"], "config.init", _INIT_FIELDS, set())
            if "cmd" in init and not (
                isinstance(init["cmd"], list) and all(isinstance(a, str) for a in init["cmd"])
            ):
                raise _Reply(400, "config.init.cmd must be a list of strings")
        if "restart" in config:
            restart = _fields(config["restart"], "config.restart", _RESTART_FIELDS, set())
            if restart.get("policy") not in {None, "no", "always", "on-failure", "spot-price"}:
                raise _Reply(400, "config.restart.policy must be no, always or on-failure")
        mounts = config.get("mounts", [])
        if not isinstance(mounts, list):
            raise _Reply(400, "config.mounts must be a list")
        volumes = []
        for mount in mounts:
            _fields(mount, "config.mounts[]", _MOUNT_FIELDS, {"volume", "path"})
            volume = self.volumes.get(mount["volume"])
            if volume is None:
                raise _Reply(400, f"volume {mount['volume']} not found")
            if volume.attached_machine_id is not None:
                raise _Reply(400, f"volume {volume.id} is already attached to a machine")
            if volume.region != region:
                raise _Reply(400, f"volume {volume.id} is in {volume.region}, not {region}")
            volumes.append(volume)
        number = next(self._ids)
        machine_id = f"{number:014x}"
        machine = FakeMachine(
            id=machine_id,
            name=str(body.get("name") or f"machine-{number}"),
            region=region,
            config=config,
            instance_id=f"01H{number:023d}",
            boot_at=time.monotonic() + self.boot_delay,
            private_ip=self.node.allocate_address() if self.node is not None else "",
        )
        if body.get("skip_launch"):
            machine.boot_at = float("inf")
        self.machines[machine_id] = machine
        for volume in volumes:
            volume.attached_machine_id = machine_id
            volume.state = "attached"
        self._tick(machine)
        return machine.to_json(app)

    async def _wait(self, machine: FakeMachine, query: httpx.QueryParams) -> tuple[int, Any]:
        state = query.get("state", "started")
        if state not in _WAIT_STATES:
            raise _Reply(400, f"state must be one of {', '.join(sorted(_WAIT_STATES))}")
        raw = query.get("timeout", "60")
        if not raw.isdigit() or not 1 <= int(raw) <= 60:
            raise _Reply(400, "timeout must be a whole number of seconds from 1 to 60")
        instance = query.get("instance_id")
        if instance is not None and instance != machine.instance_id:
            raise _Reply(400, f"instance {instance} is not this machine's")
        deadline = time.monotonic() + int(raw)
        while True:
            self._tick(machine)
            if machine.state == state:
                return 200, {"ok": True}
            if time.monotonic() >= deadline:
                raise _Reply(408, f"deadline_exceeded: machine is {machine.state}, not {state}")
            await asyncio.sleep(0.005)

    def _volumes(self, request: httpx.Request, rest: list[str], method: str) -> tuple[int, Any]:
        if not rest:
            if method == "GET":
                return 200, [v.to_json() for v in self.volumes.values()]
            if method == "POST":
                body = _fields(
                    self._json(request), "body", _VOLUME_FIELDS, {"name", "region", "size_gb"}
                )
                if not isinstance(body["name"], str) or not _VOLUME_NAME.match(body["name"]):
                    raise _Reply(400, "name: lowercase letters, digits and _, at most 30")
                if body["region"] not in self.regions:
                    raise _Reply(400, f"region {body['region']!r} is not a Fly region")
                if not isinstance(body["size_gb"], int) or body["size_gb"] < 1:
                    raise _Reply(400, "size_gb must be a whole number of GB, at least 1")
                volume = FakeVolume(
                    id=f"vol_{next(self._ids):016x}",
                    name=body["name"],
                    region=body["region"],
                    size_gb=body["size_gb"],
                    encrypted=bool(body.get("encrypted", True)),
                )
                self.volumes[volume.id] = volume
                return 200, volume.to_json()
            raise _Reply(405, "method not allowed")
        volume = self._volume(rest[0])
        if len(rest) == 1 and method == "GET":
            return 200, volume.to_json()
        if len(rest) == 1 and method == "DELETE":
            if volume.attached_machine_id is not None:
                raise _Reply(412, f"volume {volume.id} is attached to a machine; destroy it first")
            del self.volumes[volume.id]
            if self.node is not None:
                self.node.remove_volume(volume.id)
            return 200, {**volume.to_json(), "state": "destroyed"}
        raise _Reply(404, "not found")
