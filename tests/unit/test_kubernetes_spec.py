"""The kubernetes provider's Pod, PVC, Secret and NetworkPolicy, compared as data."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest

from agcluster_jupyter.config import AgentConfig
from agcluster_jupyter.presets import load_preset_file
from agcluster_jupyter.providers.base import (
    LABEL_CONFIG,
    LABEL_OWNER,
    LABEL_SESSION,
    LABEL_STATE_ROOT,
    LABEL_VERSION,
    RunnerSpec,
)
from agcluster_jupyter.providers.kubernetes_spec import (
    PodSettings,
    cpu_quantity,
    label_selector,
    label_value,
    metrics_summary,
    network_policy_spec,
    parse_quantity,
    pod_name,
    pod_spec,
    pvc_name,
    pvc_spec,
    runner_gateway,
    secret_spec,
    size_quantity,
)
from agcluster_jupyter.runner.protocol import token_digest

SID = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
TOKEN = "per-session-token-abc"
RUNNER_TOKEN = "runner-bearer-xyz"
SERVER_KEY = "sk-ant-never-in-a-pod"
STATE_ROOT = "/home/alice/.local/share/jupyter/agcluster"
PRESET = Path(__file__).resolve().parents[2] / "presets" / "code-assistant.yaml"
GATEWAY = "http://agcluster-gateway.jupyter.svc:8890"
SETTINGS = PodSettings(image="agcluster-agent:0.1.0", gateway_url=GATEWAY, uid=1000, gid=1000)
LABEL_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def make_spec(config: AgentConfig | None = None, resume: str | None = None) -> RunnerSpec:
    cfg = config or load_preset_file(PRESET)
    return RunnerSpec(
        session_id=SID,
        config=cfg,
        workspace=Path("/unused/ws"),
        state_dir=Path("/unused/state"),
        socket_dir=Path("/unused/s"),
        session_token=TOKEN,
        gateway=GATEWAY,
        owner="alice@example.org",
        resume=resume,
        labels={
            LABEL_SESSION: SID,
            LABEL_CONFIG: cfg.id,
            LABEL_OWNER: "alice@example.org",
            LABEL_VERSION: "0.1.0",
            LABEL_STATE_ROOT: STATE_ROOT,
        },
        control_token=RUNNER_TOKEN,
    )


def inline(**fields: Any) -> AgentConfig:
    return AgentConfig.model_validate(
        {"id": "custom", "allowed_tools": ["Bash"], **fields},
    )


def expected_labels() -> dict[str, str]:
    return {
        LABEL_SESSION: SID,
        LABEL_CONFIG: "code-assistant",
        LABEL_OWNER: label_value("alice@example.org"),
        LABEL_VERSION: "0.1.0",
        LABEL_STATE_ROOT: label_value(STATE_ROOT),
    }


def expected_annotations() -> dict[str, str]:
    return {
        "agcluster.org/session-id": SID,
        f"agcluster.org/{LABEL_OWNER}": "alice@example.org",
        f"agcluster.org/{LABEL_STATE_ROOT}": STATE_ROOT,
    }


CONTAINER_SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": 1000,
    "runAsGroup": 1000,
    "allowPrivilegeEscalation": False,
    "privileged": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def test_pod_for_the_code_assistant_preset() -> None:
    spec = make_spec()
    cfg = spec.config
    limits = cfg.resource_limits
    pod = pod_spec(spec, SETTINGS)
    container = pod["spec"]["containers"][0]
    # the probe's script is checked on its own below
    probe = container.pop("readinessProbe")
    resources = {
        "cpu": cpu_quantity(limits.cpu),
        "memory": size_quantity(limits.memory_bytes),
        "ephemeral-storage": "1Gi",
    }
    assert pod == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "agcluster-0f1e2d3c4b5a",
            "labels": expected_labels(),
            "annotations": expected_annotations(),
        },
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
                "runAsUser": 1000,
                "runAsGroup": 1000,
                "fsGroup": 1000,
                "fsGroupChangePolicy": "OnRootMismatch",
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "initContainers": [
                {
                    "name": "prepare-volume",
                    "image": "agcluster-agent:0.1.0",
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["mkdir", "-p", "/volume/workspace", "/volume/agent-state"],
                    "resources": {
                        "requests": {"cpu": "100m", "memory": "64Mi"},
                        "limits": {"cpu": "100m", "memory": "64Mi"},
                    },
                    "securityContext": CONTAINER_SECURITY,
                    "volumeMounts": [{"name": "workspace", "mountPath": "/volume"}],
                }
            ],
            "containers": [
                {
                    "name": "runner",
                    "image": "agcluster-agent:0.1.0",
                    "imagePullPolicy": "IfNotPresent",
                    "command": [
                        "python",
                        "-m",
                        "agcluster_jupyter.runner",
                        "--listen",
                        "tcp:0.0.0.0:8765",
                        "--workspace",
                        "/workspace",
                        "--state-dir",
                        "/var/lib/agcluster/state",
                        "--gateway",
                        GATEWAY,
                    ],
                    "workingDir": "/workspace",
                    "ports": [{"name": "runner", "containerPort": 8765}],
                    "env": [
                        {"name": "AGCLUSTER_CONFIG", "value": cfg.model_dump_json()},
                        {
                            "name": "AGCLUSTER_SESSION_TOKEN",
                            "valueFrom": {
                                "secretKeyRef": {
                                    "name": "agcluster-tok-0f1e2d3c4b5a",
                                    "key": "AGCLUSTER_SESSION_TOKEN",
                                }
                            },
                        },
                        {
                            "name": "AGCLUSTER_RUNNER_TOKEN_SHA256",
                            "valueFrom": {
                                "secretKeyRef": {
                                    "name": "agcluster-tok-0f1e2d3c4b5a",
                                    "key": "AGCLUSTER_RUNNER_TOKEN_SHA256",
                                }
                            },
                        },
                        # what the agent is told: a pod of its own, no network
                        {"name": "AGCLUSTER_ISOLATED", "value": "1"},
                        {"name": "AGCLUSTER_NETWORK", "value": "0"},
                        {"name": "AGCLUSTER_JUPYTER_TOOLS", "value": "0"},
                        {"name": "HOME", "value": "/home/agent"},
                        {"name": "LANG", "value": "C.UTF-8"},
                        {"name": "PYTHONUNBUFFERED", "value": "1"},
                        {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
                        {"name": "MPLBACKEND", "value": "Agg"},
                        {
                            "name": "BASH_ENV",
                            "value": "$({ echo 1000 > /proc/$$/oom_score_adj; } 2>/dev/null)",
                        },
                        {"name": "SHLVL", "value": "1"},
                    ],
                    "resources": {"requests": resources, "limits": resources},
                    "securityContext": CONTAINER_SECURITY,
                    "volumeMounts": [
                        # one PVC: the workspace and the CLI's state (resume survives
                        # a replaced pod)
                        {"name": "workspace", "mountPath": "/workspace", "subPath": "workspace"},
                        {
                            "name": "workspace",
                            "mountPath": "/var/lib/agcluster/state",
                            "subPath": "agent-state",
                        },
                        {"name": "tmp", "mountPath": "/tmp"},
                        {"name": "home", "mountPath": "/home/agent"},
                    ],
                    "stdin": False,
                    "tty": False,
                }
            ],
            "volumes": [
                {
                    "name": "workspace",
                    "persistentVolumeClaim": {"claimName": "agcluster-ws-0f1e2d3c4b5a"},
                },
                {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "256Mi"}},
                {"name": "home", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
            ],
        },
    }
    # ready = listening: the pod has no control token to ask /health with
    assert probe == {
        "tcpSocket": {"port": 8765},
        "periodSeconds": 5,
        "timeoutSeconds": 3,
        "failureThreshold": 3,
    }
    assert RUNNER_TOKEN not in json.dumps(pod)


def test_no_secret_in_the_pod_and_the_secret_holds_only_the_session_token_and_a_digest() -> None:
    spec = make_spec()
    text = json.dumps(pod_spec(spec, SETTINGS))
    assert TOKEN not in text and SERVER_KEY not in text and "ANTHROPIC" not in text
    secret = secret_spec(spec)
    assert secret["metadata"]["name"] == "agcluster-tok-0f1e2d3c4b5a"
    # the control token's digest, never the token: the cluster cannot hand it out
    assert secret["stringData"] == {
        "AGCLUSTER_SESSION_TOKEN": TOKEN,
        "AGCLUSTER_RUNNER_TOKEN_SHA256": token_digest(RUNNER_TOKEN),
    }
    assert SERVER_KEY not in json.dumps(secret) and RUNNER_TOKEN not in json.dumps(secret)


def test_resources_from_an_inline_config() -> None:
    spec = make_spec(inline(resource_limits={"cpu": 1.5, "memory": "1g", "storage": "2g"}))
    container = pod_spec(spec, SETTINGS)["spec"]["containers"][0]
    want = {"cpu": "1500m", "memory": "1Gi", "ephemeral-storage": "1Gi"}
    assert container["resources"] == {"requests": want, "limits": want}
    assert pvc_spec(spec, SETTINGS)["spec"]["resources"] == {"requests": {"storage": "2Gi"}}


def test_no_ephemeral_storage_limit() -> None:
    settings = PodSettings(image="i", gateway_url=GATEWAY, ephemeral_storage=None)
    spec = make_spec(inline(resource_limits={"cpu": 0.25, "memory": "768m"}))
    want = {"cpu": "250m", "memory": "768Mi"}
    assert pod_spec(spec, settings)["spec"]["containers"][0]["resources"] == {
        "requests": want,
        "limits": want,
    }


@pytest.mark.parametrize("runtime", [None, "gvisor", "kata"])
def test_runtime_class_set_or_unset(runtime: str | None) -> None:
    settings = PodSettings(image="i", gateway_url=GATEWAY, runtime_class=runtime)
    pod_spec_ = pod_spec(make_spec(), settings)["spec"]
    if runtime is None:
        assert "runtimeClassName" not in pod_spec_
    else:
        assert pod_spec_["runtimeClassName"] == runtime


def test_resume_is_passed_to_the_runner() -> None:
    command = pod_spec(make_spec(resume="sdk-123"), SETTINGS)["spec"]["containers"][0]["command"]
    assert command[-2:] == ["--resume", "sdk-123"]


def test_pvc_is_kept_after_stop_and_follows_the_storage_class() -> None:
    spec = make_spec()
    storage = size_quantity(spec.config.resource_limits.storage_bytes)
    assert pvc_spec(spec, SETTINGS) == {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": "agcluster-ws-0f1e2d3c4b5a",
            "labels": expected_labels(),
            "annotations": expected_annotations(),
        },
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": storage}}},
    }
    assert "ownerReferences" not in pvc_spec(spec, SETTINGS)["metadata"]
    fast = PodSettings(image="i", gateway_url=GATEWAY, storage_class="fast-ssd")
    assert pvc_spec(spec, fast)["spec"]["storageClassName"] == "fast-ssd"


SERVER_PEER = {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "agcluster-jupyter"}}}
DNS_RULE = {
    "to": [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
    ],
    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
}


def test_network_policy_without_network() -> None:
    spec = make_spec()
    assert spec.config.network is False
    assert network_policy_spec(spec, SETTINGS) == {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": "agcluster-0f1e2d3c4b5a",
            "labels": expected_labels(),
            "annotations": expected_annotations(),
        },
        "spec": {
            "podSelector": {"matchLabels": {LABEL_SESSION: SID}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [SERVER_PEER], "ports": [{"protocol": "TCP", "port": 8765}]}],
            "egress": [
                DNS_RULE,
                {"to": [SERVER_PEER], "ports": [{"protocol": "TCP", "port": 8890}]},
            ],
        },
    }


def test_the_agent_is_told_whether_it_has_a_network() -> None:
    for network, told in ((False, "0"), (True, "1")):
        container = pod_spec(make_spec(inline(network=network)), SETTINGS)["spec"]["containers"][0]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert (env["AGCLUSTER_ISOLATED"], env["AGCLUSTER_NETWORK"]) == ("1", told)


def test_network_policy_with_network_and_server_namespace() -> None:
    settings = PodSettings(
        image="i",
        gateway_url="https://gw.example",
        server_pod_labels={"app": "jupyter"},
        server_namespace="hub",
    )
    # the spec's gateway (the server's) wins over the setting; a non-URL one falls back
    spec = dataclasses.replace(make_spec(inline(network=True)), gateway="unix:/not/a/url")
    policy = network_policy_spec(spec, settings)
    assert runner_gateway(spec, settings) == "https://gw.example"
    assert runner_gateway(make_spec(), settings) == GATEWAY
    peer = {
        "podSelector": {"matchLabels": {"app": "jupyter"}},
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "hub"}},
    }
    assert policy["spec"]["ingress"][0]["from"] == [peer]
    assert policy["spec"]["egress"] == [
        DNS_RULE,
        {"to": [peer], "ports": [{"protocol": "TCP", "port": 443}]},
        {
            "to": [
                {"ipBlock": {"cidr": "0.0.0.0/0", "except": ["169.254.169.254/32"]}},
                {"ipBlock": {"cidr": "::/0"}},
            ]
        },
    ]


def test_the_policy_selects_the_pod_even_without_a_session_label() -> None:
    spec = make_spec()
    spec.labels = {LABEL_CONFIG: "code-assistant"}
    pod = pod_spec(spec, SETTINGS)
    selector = network_policy_spec(spec, SETTINGS)["spec"]["podSelector"]["matchLabels"]
    assert selector.items() <= pod["metadata"]["labels"].items()


@pytest.mark.parametrize(
    "value",
    [
        "",
        "plain-value_1.2",
        "alice@example.org",
        STATE_ROOT,
        "x" * 63,
        "x" * 64,
        "-leading-and-trailing-",
        "üñí©ødé",
        "/",
    ],
)
def test_label_values_are_label_safe(value: str) -> None:
    cleaned = label_value(value)
    assert len(cleaned) <= 63
    assert LABEL_RE.match(cleaned)
    assert label_value(cleaned) == cleaned  # stable


def test_valid_label_values_pass_unchanged_and_different_values_stay_different() -> None:
    for value in ["", "abc", "0.1.0", SID, "x" * 63]:
        assert label_value(value) == value
    assert label_value("a/b") != label_value("a:b")
    assert label_value("/home/a" + "x" * 80) != label_value("/home/a" + "x" * 81)
    assert label_selector({"k": "a b"}) == {"k": label_value("a b")}


def test_names_are_dns_safe() -> None:
    for name in (pod_name("ABC-def_123-4567890"), pvc_name(SID)):
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name)
    assert pod_name("ABC-def_123-4567890") == "agcluster-abcdef123456"


@pytest.mark.parametrize(
    ("cores", "quantity"), [(1.0, "1000m"), (0.25, "250m"), (2.5, "2500m"), (0.0001, "1m")]
)
def test_cpu_quantity(cores: float, quantity: str) -> None:
    assert cpu_quantity(cores) == quantity


@pytest.mark.parametrize(
    ("size", "quantity"),
    [(2 * 1024**3, "2Gi"), (1536 * 1024**2, "1536Mi"), (4096 * 3, "12Ki"), (1000, "1000")],
)
def test_size_quantity(size: int, quantity: str) -> None:
    assert size_quantity(size) == quantity


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("250m", 0.25),
        ("1", 1.0),
        ("1500000n", 0.0015),
        ("64Mi", 64 * 1024**2),
        ("123456Ki", 123456 * 1024),
        ("1G", 1e9),
        ("2Gi", 2 * 1024**3),
    ],
)
def test_parse_quantity(text: str, value: float) -> None:
    assert parse_quantity(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["", "abc", "12Qi", "-1", "1.2.3m"])
def test_parse_quantity_refuses_garbage(text: str) -> None:
    with pytest.raises(ValueError):
        parse_quantity(text)


def test_metrics_summary_adds_up_the_containers() -> None:
    metrics = {
        "containers": [
            {"name": "runner", "usage": {"cpu": "250m", "memory": "100Mi"}},
            {"name": "sidecar", "usage": {"cpu": "50000000n", "memory": "28Mi"}},
        ]
    }
    assert metrics_summary(metrics, 2 * 1024**3) == {
        "cpu_percent": 30.0,
        "memory_bytes": 128 * 1024**2,
        "memory_limit_bytes": 2 * 1024**3,
    }
    assert metrics_summary({}, 1) == {
        "cpu_percent": 0.0,
        "memory_bytes": 0,
        "memory_limit_bytes": 1,
    }


def test_the_runner_keeps_the_checkpoints_on_the_pvc_out_of_the_workspace() -> None:
    spec = dataclasses.replace(make_spec(), checkpoint_max_bytes=2 * 1024**3)
    pod = pod_spec(spec, SETTINGS)
    (container,) = pod["spec"]["containers"]
    cmd = container["command"]
    assert cmd[-4:] == [
        "--checkpoint-dir",
        "/var/lib/agcluster/state/checkpoints",
        "--checkpoint-max-bytes",
        "2147483648",
    ]
    # the state mount is the PVC's agent-state subPath: the store outlives the pod
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/var/lib/agcluster/state"]["subPath"] == "agent-state"
    assert (
        "--checkpoint-dir"
        not in pod_spec(make_spec(), SETTINGS)["spec"]["containers"][0]["command"]
    )
