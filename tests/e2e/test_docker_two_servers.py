"""Two Jupyter servers of one user on one ``state_root``, docker provider: B never
lists, adopts, reaps, stops or removes (as an orphan) the container of A's session; when
A is gone, B takes the session and its container over (see
tests/integration/test_two_servers.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from agcluster_jupyter.testing.server import ScriptedModelServer

from ..integration.test_two_servers import check_two_servers
from ..support import TEST_KEY

pytestmark = [pytest.mark.docker, pytest.mark.cli]


@pytest.fixture
def model() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer(api_key=TEST_KEY) as server:
        yield server


def test_each_server_owns_its_sessions_on_docker(
    require_docker: Any, model: ScriptedModelServer
) -> None:
    check_two_servers(model, "docker", "--AgClusterApp.runner_start_timeout=90")
