"""A small local fake of the Kubernetes REST API, for the kubernetes provider's tests.

It speaks the real paths and JSON for the calls the provider makes: create, get, list
(``labelSelector``, ``fieldSelector=metadata.name=``), watch (``?watch=true``, newline
-delimited ``{"type", "object"}``, existing objects first as ``ADDED``) and delete of
pods, persistentvolumeclaims and secrets (``/api/v1``) and networkpolicies
(``/apis/networking.k8s.io/v1``), plus ``GET /version``.  Errors are ``Status`` objects
with the real codes (404 NotFound, 409 AlreadyExists).

Pods are "scheduled" by the fake: shortly after creation a pod turns ``Running`` and
``Ready`` with ``pod_ip`` (or ``Failed`` when ``fail_pods`` is set).  Point ``pod_ip`` and
the provider's runner port at a local runner stub and the whole create path runs.

With a ``node`` (:class:`~.fake_node.LocalNode`) the fake is a one-node cluster that runs
the pod's real command: Secret-backed env resolved, the PVC a folder (its ``subPath``
folders made as the agent user, as the pod's init container does), emptyDirs scratch
folders, the pod's IP a loopback address of its own.  The pod turns ``Running`` and
``Ready`` once its process started, ``Failed``/``Succeeded`` when it exits; deleting the
pod stops the process, deleting the PVC removes its folder, and the metrics API
(``GET /apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods/{name}``, as metrics-server
serves it) reports the pod's processes' CPU and memory.  Without a node that API is a 404,
as on a cluster without metrics-server.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import os
import socket
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from tornado import httpserver, web

from .fake_node import LocalNode

__all__ = ["FakeKubernetes"]

_KINDS = {
    "pods": ("v1", "Pod"),
    "persistentvolumeclaims": ("v1", "PersistentVolumeClaim"),
    "secrets": ("v1", "Secret"),
    "networkpolicies": ("networking.k8s.io/v1", "NetworkPolicy"),
}


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure" if code >= 400 else "Success",
        "message": message,
        "reason": reason,
        "code": code,
    }


def _selector(text: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for part in filter(None, text.split(",")):
        key, _, value = part.replace("==", "=").partition("=")
        pairs[key.strip()] = value.strip()
    return pairs


@dataclass
class _Watch:
    plural: str
    namespace: str
    labels: dict[str, str]
    name: str | None
    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)


@dataclass
class FakeKubernetes:
    """The fake API server; ``await start()`` then use ``url``; ``await stop()``."""

    pod_ip: str = "127.0.0.1"
    #: seconds from pod creation to Running + Ready
    schedule_delay: float = 0.05
    fail_pods: bool = False
    objects: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    #: every request as ``(method, path)``
    requests: list[tuple[str, str]] = field(default_factory=list)
    #: answer this many of the next requests with 503 (to test retries)
    fail_next: int = 0
    url: str = ""
    #: run pods for real (see the module docstring); None: pods only change state
    node: LocalNode | None = None
    _version: int = 0
    _watches: list[_Watch] = field(default_factory=list)
    _server: httpserver.HTTPServer | None = None
    _timers: list[asyncio.TimerHandle] = field(default_factory=list)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    #: the last CPU reading per pod, for the metrics API's rate
    _cpu_samples: dict[str, tuple[float, float]] = field(default_factory=dict)

    def _background(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def start(self) -> None:
        if self.node is not None:
            self.node.on_exit = self._pod_exited
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        sock.setblocking(False)
        port = sock.getsockname()[1]
        app = web.Application(
            [
                (r"/version", _Version, {"fake": self}),
                (
                    r"/apis/metrics\.k8s\.io/v1beta1/namespaces/([^/]+)/pods/([^/]+)",
                    _PodMetrics,
                    {"fake": self},
                ),
                (r"/api/v1/namespaces/([^/]+)/([a-z]+)(?:/([^/]+))?", _Objects, {"fake": self}),
                (
                    r"/apis/networking\.k8s\.io/v1/namespaces/([^/]+)/([a-z]+)(?:/([^/]+))?",
                    _Objects,
                    {"fake": self},
                ),
            ]
        )
        self._server = httpserver.HTTPServer(app)
        self._server.add_sockets([sock])
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        for timer in self._timers:
            timer.cancel()
        # pods being started or stopped finish first: no process escapes the node
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=15)
        if self.node is not None:
            await self.node.close()

        for watch in self._watches:
            watch.queue.put_nowait({})
        if self._server is not None:
            self._server.stop()
            await self._server.close_all_connections()

    # -- the store ------------------------------------------------------------------------

    def get(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get((plural, namespace, name))

    def names(self, plural: str) -> list[str]:
        return sorted(name for (kind, _, name) in self.objects if kind == plural)

    def _emit(self, kind: str, plural: str, namespace: str, obj: dict[str, Any]) -> None:
        for watch in self._watches:
            if self._matches(watch.plural, watch.namespace, watch.labels, watch.name, obj, plural):
                watch.queue.put_nowait({"type": kind, "object": copy.deepcopy(obj)})

    @staticmethod
    def _matches(
        plural: str,
        namespace: str,
        labels: dict[str, str],
        name: str | None,
        obj: dict[str, Any],
        obj_plural: str,
    ) -> bool:
        meta = obj["metadata"]
        have = meta.get("labels") or {}
        return (
            plural == obj_plural
            and meta.get("namespace") == namespace
            and (name is None or meta["name"] == name)
            and all(have.get(k) == v for k, v in labels.items())
        )

    def _bump(self, obj: dict[str, Any]) -> None:
        self._version += 1
        obj["metadata"]["resourceVersion"] = str(self._version)

    def create(self, plural: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        api_version, kind = _KINDS[plural]
        obj = copy.deepcopy(body)
        obj["apiVersion"], obj["kind"] = api_version, kind
        meta = obj.setdefault("metadata", {})
        meta["namespace"] = namespace
        meta["uid"] = f"uid-{self._version + 1}"
        meta["creationTimestamp"] = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        if plural == "secrets" and "stringData" in obj:
            data = obj.setdefault("data", {})
            for key, value in obj.pop("stringData").items():
                data[key] = base64.b64encode(value.encode()).decode()
        if plural == "pods":
            obj["status"] = {"phase": "Pending"}
            timer = asyncio.get_running_loop().call_later(
                self.schedule_delay, self._schedule, namespace, meta["name"]
            )
            self._timers.append(timer)
        if plural == "persistentvolumeclaims":
            obj["status"] = {"phase": "Bound"}
        self._bump(obj)
        self.objects[(plural, namespace, meta["name"])] = obj
        self._emit("ADDED", plural, namespace, obj)
        return obj

    def _schedule(self, namespace: str, name: str) -> None:
        pod = self.objects.get(("pods", namespace, name))
        if pod is None:
            return
        if self.node is not None and not self.fail_pods:
            self._background(self._run_pod(namespace, name, pod))
            return
        if self.fail_pods:
            pod["status"] = {
                "phase": "Failed",
                "containerStatuses": [
                    {
                        **self._container_status(pod),
                        "ready": False,
                        "state": {"terminated": {"exitCode": 2, "reason": "Error"}},
                    }
                ],
            }
        else:
            pod["status"] = {
                "phase": "Running",
                "podIP": self.pod_ip,
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [
                    {**self._container_status(pod), "ready": True, "state": {"running": {}}}
                ],
            }
        self._bump(pod)
        self._emit("MODIFIED", "pods", namespace, pod)

    async def _run_pod(self, namespace: str, name: str, pod: dict[str, Any]) -> None:
        node = self.node
        assert node is not None
        spec = pod["spec"]
        container = spec["containers"][0]
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        mounts: dict[str, Any] = {}
        for mount in container.get("volumeMounts", []):
            volume = volumes[mount["name"]]
            if "persistentVolumeClaim" in volume:
                folder = node.volume(
                    volume["persistentVolumeClaim"]["claimName"], owned_by_agent=True
                )
                if mount.get("subPath"):
                    folder = folder / mount["subPath"]
                    folder.mkdir(exist_ok=True)  # the init container's mkdir -p
                    os.chown(folder, node.agent_user.pw_uid, node.agent_user.pw_gid)
            else:
                folder = node.scratch(f"{name}-{mount['name']}")
            mounts[mount["mountPath"]] = folder
        env: dict[str, str] = {}
        for item in container.get("env", []):
            if "value" in item:
                env[item["name"]] = item["value"]
                continue
            ref = item["valueFrom"]["secretKeyRef"]
            secret = self.get("secrets", namespace, ref["name"]) or {}
            encoded = (secret.get("data") or {}).get(ref["key"], "")
            env[item["name"]] = base64.b64decode(encoded).decode()
        try:
            workload = await node.start(name, container["command"], env, mounts, as_agent=True)
        except OSError as exc:
            self._set_status(namespace, name, {"phase": "Failed", "message": str(exc)})
            return
        if self.get("pods", namespace, name) is not pod:
            await node.kill(name)  # deleted while starting
            return
        self._set_status(
            namespace,
            name,
            {
                "phase": "Running",
                "podIP": workload.address,
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [
                    {**self._container_status(pod), "ready": True, "state": {"running": {}}}
                ],
            },
        )

    def _pod_exited(self, name: str, code: int) -> None:
        for (plural, namespace, obj_name), pod in list(self.objects.items()):
            if plural == "pods" and obj_name == name:
                terminated = {
                    "exitCode": code,
                    "reason": "Completed" if code == 0 else "Error",
                    # as kubelet does with FallbackToLogsOnError: the output's tail
                    "message": self.node.tail(name) if self.node is not None else "",
                }
                self._set_status(
                    namespace,
                    name,
                    {
                        "phase": "Succeeded" if code == 0 else "Failed",
                        "containerStatuses": [
                            {
                                **self._container_status(pod),
                                "ready": False,
                                "state": {"terminated": terminated},
                            }
                        ],
                    },
                )

    def _set_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        pod = self.objects.get(("pods", namespace, name))
        if pod is None:
            return
        pod["status"] = status
        self._bump(pod)
        self._emit("MODIFIED", "pods", namespace, pod)

    @staticmethod
    def _container_status(pod: dict[str, Any]) -> dict[str, Any]:
        container = pod["spec"]["containers"][0]
        return {
            "name": container["name"],
            "image": container["image"],
            "imageID": "",
            "restartCount": 0,
        }

    def delete(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        obj = self.objects.pop((plural, namespace, name), None)
        if obj is not None and self.node is not None:
            if plural == "pods":
                self._background(self.node.kill(name))
            elif plural == "persistentvolumeclaims":
                self.node.remove_volume(name)
        if obj is not None:
            self._bump(obj)
            self._emit("DELETED", plural, namespace, obj)
        return obj

    def set_pod_phase(self, namespace: str, name: str, phase: str) -> None:
        """Move a pod to ``phase`` (e.g. ``Failed``, as an OOM-killed runner would)."""
        pod = self.objects[("pods", namespace, name)]
        pod["status"] = {"phase": phase}
        self._bump(pod)
        self._emit("MODIFIED", "pods", namespace, pod)


class _Base(web.RequestHandler):
    def initialize(self, fake: FakeKubernetes) -> None:
        self.fake = fake

    def check_xsrf_cookie(self) -> None:
        return

    def reply(self, code: int, body: dict[str, Any]) -> None:
        self.set_status(code)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))


class _Version(_Base):
    def get(self) -> None:
        self.reply(200, {"major": "1", "minor": "30", "gitVersion": "v1.30.0-fake"})


class _PodMetrics(_Base):
    def get(self, namespace: str, name: str) -> None:
        fake = self.fake
        usage = fake.node.usage(name) if fake.node is not None else None
        if fake.get("pods", namespace, name) is None or usage is None:
            self.reply(404, _status(404, "NotFound", f'podmetrics "{name}" not found'))
            return
        cpu_seconds, rss = usage
        now = asyncio.get_running_loop().time()
        last = fake._cpu_samples.get(name)
        fake._cpu_samples[name] = (now, cpu_seconds)
        cores = (cpu_seconds - last[1]) / (now - last[0]) if last and now > last[0] else 0.0
        self.reply(
            200,
            {
                "kind": "PodMetrics",
                "apiVersion": "metrics.k8s.io/v1beta1",
                "metadata": {"name": name, "namespace": namespace},
                "timestamp": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "window": "10s",
                "containers": [
                    {
                        "name": "runner",
                        "usage": {"cpu": f"{int(cores * 1e9)}n", "memory": f"{rss // 1024}Ki"},
                    }
                ],
            },
        )


class _Objects(_Base):
    def prepare(self) -> None:
        self.fake.requests.append((self.request.method or "", self.request.uri or ""))
        if self.fake.fail_next > 0:
            self.fake.fail_next -= 1
            self.reply(503, _status(503, "ServiceUnavailable", "the fake is unavailable"))

    def _check(self, plural: str) -> bool:
        if plural not in _KINDS:
            self.reply(404, _status(404, "NotFound", f"the server could not find {plural}"))
            return False
        return True

    async def get(self, namespace: str, plural: str, name: str | None) -> None:
        if not self._check(plural):
            return
        fake = self.fake
        if name is not None:
            obj = fake.get(plural, namespace, name)
            if obj is None:
                self.reply(404, _status(404, "NotFound", f'{plural} "{name}" not found'))
            else:
                self.reply(200, obj)
            return
        labels = _selector(self.get_argument("labelSelector", ""))
        fields = _selector(self.get_argument("fieldSelector", ""))
        only = fields.get("metadata.name")
        items = [
            copy.deepcopy(obj)
            for (kind, _, _), obj in sorted(fake.objects.items())
            if fake._matches(plural, namespace, labels, only, obj, kind)
        ]
        if self.get_argument("watch", "") not in ("true", "1"):
            _, kind_name = _KINDS[plural]
            self.reply(
                200,
                {
                    "kind": f"{kind_name}List",
                    "apiVersion": _KINDS[plural][0],
                    "metadata": {"resourceVersion": str(fake._version)},
                    "items": items,
                },
            )
            return
        watch = _Watch(plural, namespace, labels, only)
        fake._watches.append(watch)
        self.set_header("Content-Type", "application/json")
        timeout = float(self.get_argument("timeoutSeconds", "300"))
        try:
            if not self.get_argument("resourceVersion", ""):
                for obj in items:
                    self.write(json.dumps({"type": "ADDED", "object": obj}) + "\n")
            await self.flush()
            deadline = asyncio.get_running_loop().time() + timeout
            while True:
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0:
                    break
                try:
                    event = await asyncio.wait_for(watch.queue.get(), left)
                except asyncio.TimeoutError:
                    break
                if not event:
                    break
                self.write(json.dumps(event) + "\n")
                await self.flush()
        except Exception:  # noqa: BLE001 - the client went away
            pass
        finally:
            fake._watches.remove(watch)
        if not self._finished:
            self.finish()

    def post(self, namespace: str, plural: str, name: str | None) -> None:
        if not self._check(plural):
            return
        body = json.loads(self.request.body or b"{}")
        obj_name = (body.get("metadata") or {}).get("name", "")
        if self.fake.get(plural, namespace, obj_name) is not None:
            self.reply(409, _status(409, "AlreadyExists", f'{plural} "{obj_name}" already exists'))
            return
        self.reply(201, self.fake.create(plural, namespace, body))

    def delete(self, namespace: str, plural: str, name: str | None) -> None:
        if not self._check(plural) or name is None:
            return
        obj = self.fake.delete(plural, namespace, name)
        if obj is None:
            self.reply(404, _status(404, "NotFound", f'{plural} "{name}" not found'))
        else:
            self.reply(200, obj)
