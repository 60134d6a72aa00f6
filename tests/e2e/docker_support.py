"""Helpers of the docker e2e tests (their fixtures are in conftest.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agcluster_jupyter._version import __version__
from agcluster_jupyter.providers.base import LABEL_SESSION

from ..integration.test_api import chat_sse, expect_error
from ..support import parse_sse

__all__ = [
    "IMAGE",
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

#: the folders the docker tests' servers used: their containers must all be gone
STATE_ROOTS: set[str] = set()


def containers_of(client: Any, session_id: str) -> list[Any]:
    return list(
        client.containers.list(all=True, filters={"label": f"{LABEL_SESSION}={session_id}"})
    )


def session_containers(client: Any, base: Path) -> list[Any]:
    """Containers of the server whose folders are under ``base``."""
    return [
        c
        for c in client.containers.list(all=True, filters={"label": LABEL_SESSION})
        if c.labels.get("agcluster.state-root", "").startswith(str(base))
    ]


def inspect(client: Any, container_id: str) -> dict[str, Any]:
    attrs: dict[str, Any] = client.api.inspect_container(container_id)
    return attrs


def dumps(data: Any) -> str:
    return json.dumps(data, sort_keys=True, default=str)
