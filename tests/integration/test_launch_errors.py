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
