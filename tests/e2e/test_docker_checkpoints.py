"""Per-turn checkpoints on the docker provider: the same flows as on local
(``tests/integration/test_checkpoints_api.py``), the agent's tools running in the
container, the store on the host outside the bind-mounted workspace."""

from __future__ import annotations

from typing import Any

import pytest

from ..integration.test_checkpoints_api import (  # noqa: F401 - collected here too
    host_workspace,
    scenarios,
    test_a_fork_has_the_files_and_the_memory_and_leaves_its_parent_alone,
    test_bad_checkpoint_requests_get_clear_4xx,
    test_each_turn_is_a_checkpoint_that_restores_and_undoes,
    test_rewind_forgets_the_later_turns_and_undo_brings_them_back,
)

pytestmark = [pytest.mark.docker, pytest.mark.cli, pytest.mark.usefixtures("require_docker")]


@pytest.fixture
def agcluster_config(docker_config: dict[str, Any]) -> dict[str, Any]:
    return docker_config
