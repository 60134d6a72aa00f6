"""The warm pool on a remote provider: pods (or machines) started ahead, so a launch of
the pooled preset is a claim of a running runner rather than a pod start."""

from __future__ import annotations

from typing import Any

import pytest

from ..support import chat_sse, wait_until
from .conftest import Remote

pytestmark = pytest.mark.cli


@pytest.fixture
def agcluster_config(agcluster_config: dict[str, Any]) -> dict[str, Any]:
    return {**agcluster_config, "warm_pool_size": 1, "warm_pool_config": "code-assistant"}


async def _pool_ready(api: Any) -> dict[str, Any]:
    async def pool() -> dict[str, Any] | None:
        warm: dict[str, Any] = (await api("health"))["warm_pool"]
        return warm if warm["available"] >= 1 else None

    ready: dict[str, Any] = await wait_until(pool, timeout=60.0, what="the warm pool")
    return ready


async def test_a_launch_claims_a_warm_runner(api: Any, launched: Any, remote: Remote) -> None:
    await _pool_ready(api)
    (warm,) = remote.runners()
    assert (await api("agents/sessions"))["total"] == 0  # a pooled runner is nobody's yet

    reply = await launched("code-assistant")
    assert reply["agent_id"] == warm, "the launch took the pooled runner, started no new one"
    events = await chat_sse(api, reply["session_id"], "hello")
    assert events[-1]["type"] == "done"
    # the pool starts a replacement
    await _pool_ready(api)
    assert len(remote.runners()) == 2
