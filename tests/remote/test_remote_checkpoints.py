"""Per-turn checkpoints on ``provider=kubernetes`` and ``provider=fly``: the flows of
``tests/integration/test_checkpoints_api.py``, with the checkpoint store on the session's
volume and the runner doing the work (``runner/checkpoints.py``); forks carry the files
and the conversation from one runner's volume to the other's."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from ..integration.test_checkpoints_api import (  # noqa: F401 - collected here too
    HostWorkspace,
    scenarios,
    test_a_fork_has_the_files_and_the_memory_and_leaves_its_parent_alone,
    test_bad_checkpoint_requests_get_clear_4xx,
    test_each_turn_is_a_checkpoint_that_restores_and_undoes,
    test_rewind_forgets_the_later_turns_and_undo_brings_them_back,
)
from ..support import chat_sse, expect_error
from .conftest import Remote

pytestmark = pytest.mark.cli


@pytest.fixture
def host_workspace(remote: Remote) -> HostWorkspace:
    async def find(session: dict[str, Any]) -> Path:
        return await remote.host_workspace(session["agent_id"])

    return find


@pytest.mark.usefixtures("scenarios")
async def test_the_store_is_on_the_volume_out_of_the_workspace(
    api: Any, launched: Any, remote: Remote
) -> None:
    session = await launched("code-assistant")
    sid = session["session_id"]
    await chat_sse(api, sid, "tidy the notes")
    workload = remote.node.workloads[session["agent_id"]]
    if remote.name == "kubernetes":
        store = workload.mounts["/var/lib/agcluster/state"] / "checkpoints"
    else:
        store = workload.mounts["/data"] / "checkpoints"
        # Fly: root's, in the volume's root-owned top folder: the agent user cannot enter
        assert (os.stat(store).st_uid, os.stat(store.parent).st_uid) == (0, 0)
    assert os.stat(store).st_mode & 0o777 == 0o700
    assert (store / "manifest.json").is_file() and (store / "objects").is_dir()
    assert not (await remote.host_workspace(session["agent_id"]) / "checkpoints").exists()
    listed = await api(f"agents/{sid}/checkpoints")
    assert [c["turn"] for c in listed["checkpoints"]] == [1]


@pytest.mark.usefixtures("scenarios")
async def test_a_tampered_object_is_refused_not_restored(
    api: Any, launched: Any, remote: Remote
) -> None:
    """On kubernetes the pod has one uid, so the agent's tools could write the store:
    content-addressing turns a changed object into a 409, never into restored content."""
    session = await launched("code-assistant")
    sid = session["session_id"]
    workspace = await remote.host_workspace(session["agent_id"])
    (workspace / "log.txt").write_text("line one\n")
    (workspace / "old.txt").write_text("precious\n")
    await chat_sse(api, sid, "tidy the notes")
    workload = remote.node.workloads[session["agent_id"]]
    root = workload.mounts.get("/var/lib/agcluster/state") or workload.mounts["/data"]
    objects = root / "checkpoints" / "objects"
    import zlib

    from dulwich.objects import Blob

    blob = Blob.from_string(b"precious\n")
    path = objects / blob.id.decode()[:2] / blob.id.decode()[2:]
    assert path.is_file()
    path.chmod(0o600)
    path.write_bytes(zlib.compress(b"blob 9\0evil!!!\n\n"))
    await expect_error(api(f"agents/{sid}/checkpoints/1/restore", method="POST", body={}), 409)
    assert not (workspace / "old.txt").exists()  # nothing was written
