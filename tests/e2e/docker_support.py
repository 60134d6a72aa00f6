"""Helpers of the docker e2e tests (their fixtures are in conftest.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from agcluster_jupyter._version import __version__
from agcluster_jupyter.providers.base import LABEL_SESSION
from agcluster_jupyter.providers.docker_engine import docker_sdk

from ..support import chat_sse, expect_error, parse_sse

__all__ = [
    "IMAGE",
    "docker_unusable",
    "STATE_ROOTS",
    "chat_sse",
    "containers_of",
    "dumps",
    "expect_error",
    "inspect",
    "parse_sse",
    "session_containers",
]

IMAGE = f"agcluster-agent:{__version__}"


def docker_unusable(reason: str) -> None:
    """No usable engine or image: a skip on a developer's machine, a failure in CI."""
    if os.environ.get("CI"):
        pytest.fail(f"docker e2e: {reason} (CI is set, so this is a failure, not a skip)")
    pytest.skip(f"docker e2e: {reason}")


#: the folders the docker tests' servers used: their containers must all be gone
STATE_ROOTS: set[str] = set()


def list_containers(client: Any, label: str) -> list[Any]:
    """``containers.list`` by label, racing removals: the SDK inspects each listed
    container, and one removed in between (a provider at work) raises NotFound."""
    not_found = docker_sdk("docker.errors").NotFound
    for _ in range(10):
        try:
            return list(client.containers.list(all=True, filters={"label": label}))
        except not_found:
            continue
    raise AssertionError(f"containers labelled {label} kept vanishing while being listed")


def containers_of(client: Any, session_id: str) -> list[Any]:
    return list_containers(client, f"{LABEL_SESSION}={session_id}")


def session_containers(client: Any, base: Path) -> list[Any]:
    """Containers of the server whose folders are under ``base``."""
    return [
        c
        for c in list_containers(client, LABEL_SESSION)
        if c.labels.get("agcluster.state-root", "").startswith(str(base))
    ]


def inspect(client: Any, container_id: str) -> dict[str, Any]:
    attrs: dict[str, Any] = client.api.inspect_container(container_id)
    return attrs


def dumps(data: Any) -> str:
    return json.dumps(data, sort_keys=True, default=str)
