"""Fixtures of the docker e2e tests.

Docker unreachable (or the agent image missing or stale): the tests skip, unless ``CI``
is set, where they fail (CI installs the engine and builds the image; a skip there would
hide a broken setup).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agcluster_jupyter._version import __version__
from agcluster_jupyter.providers.base import LABEL_SESSION, LABEL_STATE_ROOT

from .docker_support import IMAGE, STATE_ROOTS, docker_unusable, list_containers


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    docker: Any = __import__("docker")
    try:
        client = docker.from_env(timeout=30)
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means no engine
        docker_unusable(f"no Docker engine ({exc})")
    try:
        labels = client.images.get(IMAGE).labels
    except Exception:  # noqa: BLE001
        docker_unusable(
            f"the agent image {IMAGE} is missing; build it with `jupyter agcluster build-image`"
        )
    if labels.get("org.agcluster.version") != __version__:
        docker_unusable(f"the agent image {IMAGE} is stale; rebuild it")
    yield client
    # the whole suite: no container of any docker test's server is left
    left = [
        c.name
        for c in list_containers(client, LABEL_SESSION)
        if any(c.labels.get(LABEL_STATE_ROOT, "").startswith(r) for r in STATE_ROOTS)
    ]
    client.close()
    assert not left, f"containers outlived the docker tests: {left}"


@pytest.fixture
def require_docker(docker_client: Any, agent_dirs: dict[str, Path]) -> Any:
    STATE_ROOTS.add(str(agent_dirs["base"]))
    return docker_client


@pytest.fixture
def docker_config(require_docker: Any) -> dict[str, Any]:
    """``agcluster_config`` for a docker-provider server (short start timeout)."""
    return {"provider": "docker", "runner_start_timeout": 90.0}
