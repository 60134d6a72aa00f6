"""Pure functions behind the kubernetes provider: Pod, PVC, Secret and NetworkPolicy.

Nothing here talks to a cluster; every function returns a plain JSON-able Kubernetes
object and tests compare them as data.  The pod mirrors the Docker provider's container
(``docker_spec.py``)::

    user      uid:gid, runAsNonRoot               privileges  allowPrivilegeEscalation false
    caps      drop ALL                            seccomp     RuntimeDefault
    root fs   read-only                           tmpfs       /tmp, /home/agent (emptyDir Memory)
    limits    cpu, memory (requests = limits)     ephemeral-storage (settings, optional)
    runtime   runtimeClassName (gVisor, Kata)     restart     Never
    mounts    the session's PVC: subPath workspace → /workspace, subPath agent-state →
              the CLI state (so a replaced pod resumes the conversation); an init
              container makes both folders as the agent user; nothing else
    env       AGCLUSTER_CONFIG, AGCLUSTER_ISOLATED=1, AGCLUSTER_NETWORK (config.network),
              HOME, LANG, ...; the session and runner tokens from a per-session Secret;
              never the API key
    runner    tcp:0.0.0.0:<port> with a bearer token; model calls to the gateway URL
    network   NetworkPolicy: egress to the gateway and DNS only (config.network: anywhere
              but the cloud metadata address); ingress from the server only
    API       automountServiceAccountToken false, enableServiceLinks false

The runner's ``/health`` needs the bearer token, and a token in an ``httpGet`` probe's
headers would sit in the pod spec in plain text: the readiness probe runs a small Python
check inside the container that reads the token from the (Secret-backed) environment.

Size: four object builders that must agree with each other (labels, volumes, policy).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ..runner.protocol import (
    ENV_CONFIG,
    ENV_ISOLATED,
    ENV_JUPYTER_TOOLS,
    ENV_NETWORK,
    ENV_RUNNER_TOKEN_SHA256,
    ENV_SESSION_TOKEN,
    jupyter_tools_env,
    token_digest,
)
from .base import LABEL_SESSION, RunnerSpec
from .docker_spec import CONTAINER_HOME, OOM_FIRST, STATE_MOUNT, WORKSPACE_MOUNT

__all__ = [
    "ANNOTATION_PREFIX",
    "PodSettings",
    "cpu_quantity",
    "label_selector",
    "label_value",
    "metrics_summary",
    "network_policy_spec",
    "parse_quantity",
    "pod_name",
    "pod_spec",
    "pvc_name",
    "pvc_spec",
    "runner_command",
    "runner_gateway",
    "secret_name",
    "secret_spec",
    "size_quantity",
]

#: original (unsanitised) label values are kept as annotations under this prefix
ANNOTATION_PREFIX = "agcluster.org/"
RUNNER_CONTAINER = "runner"
_LABEL_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_BAD_CHARS = re.compile(r"[^-A-Za-z0-9_.]")
_METADATA_ADDRESS = "169.254.169.254/32"
#: the session PVC's folders: the workspace, and the CLI state (transcripts for resume)
WORKSPACE_SUBPATH = "workspace"
STATE_SUBPATH = "agent-state"
#: the runner's checkpoint store, on the PVC next to the CLI state (the pod has one uid:
#: the objects are content-addressed, and the runner checks every one it reads)
CHECKPOINT_DIR = f"{STATE_MOUNT}/checkpoints"
#: where the init container sees the whole PVC
VOLUME_MOUNT = "/volume"
INIT_RESOURCES = {"cpu": "100m", "memory": "64Mi"}


@dataclass(frozen=True)
class PodSettings:
    """Server-wide settings of every session pod (per-session ones are in the spec)."""

    image: str
    #: the runner's model gateway as the pods reach it (an in-cluster ``http(s)://`` URL)
    gateway_url: str
    uid: int = 1000
    gid: int = 1000
    #: ``gvisor``, ``kata``, ...; None: the cluster's default runtime
    runtime_class: str | None = None
    port: int = 8765
    tmp_size: str = "256Mi"
    home_size: str = "64Mi"
    #: limit (and request) of node-local disk: logs and the state emptyDir; None: unset
    ephemeral_storage: str | None = "1Gi"
    #: the workspace PVCs' storageClassName; None: the cluster default
    storage_class: str | None = None
    image_pull_policy: str = "IfNotPresent"
    #: labels of the Jupyter server's pod(s): the only peer of the runner on the network
    server_pod_labels: dict[str, str] = field(
        default_factory=lambda: {"app.kubernetes.io/name": "agcluster-jupyter"}
    )
    #: the namespace of the server's pod; None: the sessions' own namespace
    server_namespace: str | None = None


def label_value(value: str) -> str:
    """``value`` as a valid label value (≤ 63 characters of ``[-A-Za-z0-9_.]``,
    alphanumeric at both ends).  Valid values pass unchanged; others are cleaned and get
    a hash suffix so two different values never clean to the same label."""
    if len(value) <= 63 and _LABEL_VALUE_RE.match(value):
        return value
    digest = hashlib.sha256(value.encode()).hexdigest()[:10]
    cleaned = _LABEL_BAD_CHARS.sub("-", value)[: 63 - len(digest) - 1].strip("-_.")
    return f"{cleaned}-{digest}" if cleaned else digest


def label_selector(labels: dict[str, str]) -> dict[str, str]:
    """The labels as Kubernetes carries them (keys unchanged, values made label-safe)."""
    return {key: label_value(value) for key, value in labels.items()}


def _short(session_id: str) -> str:
    return re.sub(r"[^a-z0-9]", "", session_id.lower())[:12] or "x"


def pod_name(session_id: str) -> str:
    return "agcluster-" + _short(session_id)


def pvc_name(session_id: str) -> str:
    return "agcluster-ws-" + _short(session_id)


def secret_name(session_id: str) -> str:
    return "agcluster-tok-" + _short(session_id)


def cpu_quantity(cores: float) -> str:
    """``1.5`` → ``"1500m"``."""
    return f"{max(round(cores * 1000), 1)}m"


def size_quantity(size: int) -> str:
    """Bytes as a Kubernetes quantity: ``Gi``/``Mi``/``Ki`` when exact, else bytes."""
    for unit, factor in (("Gi", 1024**3), ("Mi", 1024**2), ("Ki", 1024)):
        if size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)


_QUANTITY_RE = re.compile(r"^([0-9.]+)([a-zA-Z]*)$")
_SUFFIXES = {
    "n": 1e-9,
    "u": 1e-6,
    "m": 1e-3,
    "": 1.0,
    "k": 1e3,
    "K": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "Ki": 1024.0,
    "Mi": 1024.0**2,
    "Gi": 1024.0**3,
    "Ti": 1024.0**4,
}


def parse_quantity(text: str) -> float:
    """A Kubernetes quantity as a number: ``"250m"`` → 0.25, ``"64Mi"`` → 67108864."""
    match = _QUANTITY_RE.match(text.strip())
    if match is None or match.group(2) not in _SUFFIXES:
        raise ValueError(f"not a Kubernetes quantity: {text!r}")
    return float(match.group(1)) * _SUFFIXES[match.group(2)]


def metrics_summary(pod_metrics: dict[str, Any], memory_limit: int) -> dict[str, Any]:
    """``resources()`` figures from a ``metrics.k8s.io`` PodMetrics: CPU as percent of
    one core (as ``docker stats`` counts), the working-set memory and the limit."""
    cpu = memory = 0.0
    for container in pod_metrics.get("containers") or []:
        usage = container.get("usage") or {}
        cpu += parse_quantity(str(usage.get("cpu", "0")))
        memory += parse_quantity(str(usage.get("memory", "0")))
    return {
        "cpu_percent": round(cpu * 100, 1),
        "memory_bytes": int(memory),
        "memory_limit_bytes": memory_limit,
    }


def runner_command(
    port: int, gateway_url: str, resume: str | None, checkpoint_max_bytes: int = 0
) -> list[str]:
    cmd = [
        "python",
        "-m",
        "agcluster_jupyter.runner",
        "--listen",
        f"tcp:0.0.0.0:{port}",
        "--workspace",
        WORKSPACE_MOUNT,
        "--state-dir",
        STATE_MOUNT,
        "--gateway",
        gateway_url,
    ]
    if resume:
        cmd += ["--resume", resume]
    if checkpoint_max_bytes > 0:
        cmd += [
            "--checkpoint-dir",
            CHECKPOINT_DIR,
            "--checkpoint-max-bytes",
            str(checkpoint_max_bytes),
        ]
    return cmd


def _metadata(name: str, spec: RunnerSpec) -> dict[str, Any]:
    # the session label is always there: the NetworkPolicy selects the pod by it
    labels = {**spec.labels, LABEL_SESSION: spec.session_id}
    annotations = {ANNOTATION_PREFIX + "session-id": spec.session_id}
    for key, value in labels.items():
        if label_value(value) != value:
            annotations[ANNOTATION_PREFIX + key] = value
    return {"name": name, "labels": label_selector(labels), "annotations": annotations}


def secret_spec(spec: RunnerSpec) -> dict[str, Any]:
    """The per-session Secret: the gateway token and the runner's bearer token."""
    meta = _metadata(secret_name(spec.session_id), spec)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta,
        "type": "Opaque",
        # the control token's digest only: the token itself stays with the server
        "stringData": {
            ENV_SESSION_TOKEN: spec.session_token,
            ENV_RUNNER_TOKEN_SHA256: token_digest(spec.control_token),
        },
    }


def _readiness_probe(port: int) -> dict[str, Any]:
    # the runner's API needs the control token, which the pod does not have: ready is
    # listening (the server then asks /health itself, with the token)
    return {
        "tcpSocket": {"port": port},
        "periodSeconds": 5,
        "timeoutSeconds": 3,
        "failureThreshold": 3,
    }


def runner_gateway(spec: RunnerSpec, settings: PodSettings) -> str:
    """The gateway URL the runner calls: the server's (in the spec), else the setting."""
    if spec.gateway.startswith(("http://", "https://")):
        return spec.gateway
    return settings.gateway_url


def _secret_env(name: str, secret: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": name}}}


def pod_spec(spec: RunnerSpec, settings: PodSettings) -> dict[str, Any]:
    """The Pod of the runner of ``spec``."""
    limits = spec.config.resource_limits
    resources = {"cpu": cpu_quantity(limits.cpu), "memory": size_quantity(limits.memory_bytes)}
    if settings.ephemeral_storage is not None:
        resources["ephemeral-storage"] = settings.ephemeral_storage
    secret = secret_name(spec.session_id)
    security = {
        "runAsNonRoot": True,
        "runAsUser": settings.uid,
        "runAsGroup": settings.gid,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    pod: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": _metadata(pod_name(spec.session_id), spec),
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "hostNetwork": False,
            "hostPID": False,
            "hostIPC": False,
            "terminationGracePeriodSeconds": 10,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": settings.uid,
                "runAsGroup": settings.gid,
                "fsGroup": settings.gid,
                "fsGroupChangePolicy": "OnRootMismatch",
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            # kubelet would create missing subPath folders as root: make them as the
            # agent user first (fsGroup gives the volume's root to its group)
            "initContainers": [
                {
                    "name": "prepare-volume",
                    "image": settings.image,
                    "imagePullPolicy": settings.image_pull_policy,
                    "command": [
                        "mkdir",
                        "-p",
                        f"{VOLUME_MOUNT}/{WORKSPACE_SUBPATH}",
                        f"{VOLUME_MOUNT}/{STATE_SUBPATH}",
                    ],
                    "resources": {"requests": dict(INIT_RESOURCES), "limits": dict(INIT_RESOURCES)},
                    "securityContext": dict(security),
                    "volumeMounts": [{"name": "workspace", "mountPath": VOLUME_MOUNT}],
                }
            ],
            "containers": [
                {
                    "name": RUNNER_CONTAINER,
                    "image": settings.image,
                    "imagePullPolicy": settings.image_pull_policy,
                    "command": runner_command(
                        settings.port,
                        runner_gateway(spec, settings),
                        spec.resume,
                        spec.checkpoint_max_bytes,
                    ),
                    "workingDir": WORKSPACE_MOUNT,
                    "ports": [{"name": "runner", "containerPort": settings.port}],
                    "env": [
                        {"name": ENV_CONFIG, "value": spec.config.model_dump_json()},
                        _secret_env(ENV_SESSION_TOKEN, secret),
                        _secret_env(ENV_RUNNER_TOKEN_SHA256, secret),
                        # what the agent is told: a pod of its own; the NetworkPolicy
                        # lets it out only with config.network
                        {"name": ENV_ISOLATED, "value": "1"},
                        {"name": ENV_NETWORK, "value": "1" if spec.config.network else "0"},
                        {
                            "name": ENV_JUPYTER_TOOLS,
                            "value": jupyter_tools_env(spec.jupyter_tools, spec.kernel_tools),
                        },
                        {"name": "HOME", "value": CONTAINER_HOME},
                        {"name": "LANG", "value": "C.UTF-8"},
                        {"name": "PYTHONUNBUFFERED", "value": "1"},
                        {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
                        {"name": "MPLBACKEND", "value": "Agg"},
                        {"name": "BASH_ENV", "value": OOM_FIRST},
                        {"name": "SHLVL", "value": "1"},
                    ],
                    "resources": {"requests": dict(resources), "limits": dict(resources)},
                    "securityContext": dict(security),
                    "readinessProbe": _readiness_probe(settings.port),
                    "volumeMounts": [
                        {
                            "name": "workspace",
                            "mountPath": WORKSPACE_MOUNT,
                            "subPath": WORKSPACE_SUBPATH,
                        },
                        {"name": "workspace", "mountPath": STATE_MOUNT, "subPath": STATE_SUBPATH},
                        {"name": "tmp", "mountPath": "/tmp"},
                        {"name": "home", "mountPath": CONTAINER_HOME},
                    ],
                    "stdin": False,
                    "tty": False,
                }
            ],
            "volumes": [
                {
                    "name": "workspace",
                    "persistentVolumeClaim": {"claimName": pvc_name(spec.session_id)},
                },
                {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": settings.tmp_size}},
                {
                    "name": "home",
                    "emptyDir": {"medium": "Memory", "sizeLimit": settings.home_size},
                },
            ],
        },
    }
    if settings.runtime_class:
        pod["spec"]["runtimeClassName"] = settings.runtime_class
    return pod


def pvc_spec(spec: RunnerSpec, settings: PodSettings) -> dict[str, Any]:
    """The workspace's PVC, sized by ``resource_limits.storage``.  It has no owner
    reference: it outlives the pod (stop keeps it, purge deletes it)."""
    claim: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {
            "requests": {"storage": size_quantity(spec.config.resource_limits.storage_bytes)}
        },
    }
    if settings.storage_class is not None:
        claim["storageClassName"] = settings.storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _metadata(pvc_name(spec.session_id), spec),
        "spec": claim,
    }


def _gateway_port(url: str) -> int:
    parts = urlsplit(url)
    if parts.port is not None:
        return parts.port
    return 443 if parts.scheme == "https" else 80


def network_policy_spec(spec: RunnerSpec, settings: PodSettings) -> dict[str, Any]:
    """The session pod's NetworkPolicy: ingress from the server to the runner port only;
    egress to the gateway and DNS only, or (``config.network``) anywhere but the cloud
    metadata address."""
    server: dict[str, Any] = {"podSelector": {"matchLabels": dict(settings.server_pod_labels)}}
    if settings.server_namespace is not None:
        server["namespaceSelector"] = {
            "matchLabels": {"kubernetes.io/metadata.name": settings.server_namespace}
        }
    dns = {
        "to": [
            {
                "namespaceSelector": {
                    "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                },
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
            }
        ],
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
    }
    egress: list[dict[str, Any]] = [
        dns,
        {
            "to": [server],
            "ports": [{"protocol": "TCP", "port": _gateway_port(runner_gateway(spec, settings))}],
        },
    ]
    if spec.config.network:
        egress.append(
            {
                "to": [
                    {"ipBlock": {"cidr": "0.0.0.0/0", "except": [_METADATA_ADDRESS]}},
                    {"ipBlock": {"cidr": "::/0"}},
                ]
            }
        )
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(pod_name(spec.session_id), spec),
        "spec": {
            "podSelector": {
                "matchLabels": {LABEL_SESSION: label_value(spec.session_id)},
            },
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [server], "ports": [{"protocol": "TCP", "port": settings.port}]}],
            "egress": egress,
        },
    }
