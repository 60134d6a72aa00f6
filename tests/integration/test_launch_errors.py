"""A provider that cannot even start the runner process (E2BIG, EAGAIN, ENOMEM)."""

from __future__ import annotations

from typing import Any

import pytest

from ..support import expect_error


async def test_an_os_error_starting_the_runner_is_a_503_and_fails_the_session(
    api: Any, agcluster_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def cannot_exec(spec: Any) -> Any:
        raise OSError(7, "Argument list too long")

    monkeypatch.setattr(agcluster_app.manager.provider, "create", cannot_exec)
    body = await expect_error(
        api("agents/launch", method="POST", body={"config_id": "code-assistant"}), 503
    )
    assert "Argument list too long" in body["message"]
    [session] = (await api("agents/sessions"))["sessions"]
    assert session["state"] == "failed"  # not "starting": it would hold a max_sessions slot


@pytest.mark.cli
async def test_a_session_purged_while_its_runner_starts_leaves_no_runner(
    api: Any, agcluster_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DELETE during a launch (the session is listed while it starts): the runner that
    comes up after it is stopped, and the launch says why, instead of an orphan."""
    import asyncio

    from agcluster_jupyter.testing.jupyter import runner_pids

    provider = agcluster_app.manager.provider
    real_create = provider.create
    purged = asyncio.Event()

    async def slow_create(spec: Any) -> Any:
        handle = await real_create(spec)  # the runner runs; the DELETE comes now
        await purged.wait()
        return handle

    monkeypatch.setattr(provider, "create", slow_create)
    launch = asyncio.ensure_future(
        api("agents/launch", method="POST", body={"config_id": "code-assistant"})
    )
    for _ in range(200):
        listed = (await api("agents/sessions"))["sessions"]
        if listed:
            break
        await asyncio.sleep(0.02)
    (session,) = listed
    assert session["state"] == "starting"
    await api(f"agents/sessions/{session['session_id']}", method="DELETE", params={"purge": "true"})
    purged.set()
    body = await expect_error(launch, 409)
    assert "stopped while its agent was starting" in body["message"]
    for _ in range(100):
        if not runner_pids(session["session_id"]):
            break
        await asyncio.sleep(0.05)
    assert not runner_pids(session["session_id"])
    assert (await api("agents/sessions"))["sessions"] == []
