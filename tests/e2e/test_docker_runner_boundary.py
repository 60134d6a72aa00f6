"""The agent cannot drive its own runner, on the docker provider: the attack of
tests/integration/test_runner_boundary.py inside a real container, with the server run
by root (the agent is ``nobody``; the runner's folder is root's) and by a normal user
(the agent has the server's uid, so only the control token keeps it out)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest

from agcluster_jupyter.testing.jupyter import JupyterServerProcess
from agcluster_jupyter.testing.server import ScriptedModelServer

from ..integration.test_runner_boundary import NOBODY, check_nothing_worked, run_attack
from ..support import TEST_KEY, python_for_others, serving

pytestmark = [pytest.mark.docker, pytest.mark.cli]

DOCKER_SOCKET = "/var/run/docker.sock"


@pytest.fixture
def model() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer(api_key=TEST_KEY) as server:
        yield server


@pytest.mark.parametrize("server_user", ["root", "normal user"])
def test_the_agent_cannot_drive_its_runner(
    require_docker: Any, model: ScriptedModelServer, server_user: str
) -> None:
    extra: dict[str, Any] = {}
    if server_user == "normal user":
        extra = {
            "user": NOBODY,
            "extra_groups": [os.stat(DOCKER_SOCKET).st_gid],
            "python": python_for_others(),
        }
    server = JupyterServerProcess(
        model.url,
        TEST_KEY,
        provider="docker",
        extra_args=["--AgClusterApp.runner_start_timeout=90"],
        **extra,
    )
    with serving(server) as started:
        # the runner is root's in its container: the agent's uid cannot signal it either
        attack = run_attack(started, model, kill=True)
        assert [a for a in attack["attempts"] if a[3] == "/kill"], "no runner process seen"
        check_nothing_worked(started, model, attack)
        # the control token never entered the container: the attacker's whole harvest of
        # environments and command lines does not hold it
        (record,) = (started.folders["state_root"] / "sessions").glob("*/session.json")
        token = json.loads(record.read_text())["runner_token"]
        assert token and token not in attack["tokens"]
