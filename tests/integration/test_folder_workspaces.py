"""Folder workspaces on the local provider: a session that works in a folder of the
user's Jupyter tree (launch ``workspace``), with the real CLI running real Bash in it.
The path rules, the overlap rule, purge keeping the folder, checkpoints on it."""

from __future__ import annotations

import os
import pwd
from pathlib import Path
from typing import Any

import pytest

from ..support import bash_scenario, chat_sse, expect_error

pytestmark = pytest.mark.cli

AGENT = pwd.getpwnam("nobody")


@pytest.fixture
def jp_root_dir(agent_dirs: dict[str, Path]) -> Path:
    """The Jupyter tree, where the agent user (nobody, when the tests run as root) can
    reach it (pytest's tmp_path is 0700)."""
    root = agent_dirs["base"] / "tree"
    root.mkdir()
    root.chmod(0o755)
    return root


def _project(root: Path, name: str = "project") -> Path:
    folder = root / name
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "notes.txt").write_text("the user's notes\n")
    if os.geteuid() == 0:  # the user whose work it is: the agent user here
        for path in (folder, folder / "data", folder / "data" / "notes.txt"):
            os.chown(path, AGENT.pw_uid, AGENT.pw_gid)
    return folder


async def test_an_agent_works_in_the_users_folder_and_a_purge_keeps_it(
    api: Any, launched: Any, scripted_model: Any, jp_root_dir: Path
) -> None:
    folder = _project(jp_root_dir)
    scripted_model.add_scenarios(
        [bash_scenario("summarise", "pwd && cat data/notes.txt && echo made > summary.txt")]
    )
    session = await launched("code-assistant", workspace="project")
    sid = session["session_id"]
    assert session["folder"] == "project" and session["workspace"] == str(folder.resolve())
    events = await chat_sse(api, sid, "summarise the notes")
    output = next(e["output"] for e in events if e["type"] == "tool_result")
    assert str(folder.resolve()) in output and "the user's notes" in output
    assert (folder / "summary.txt").read_text() == "made\n"
    # the files API and checkpoints work on it as on a folder of the session's own
    tree = await api(f"files/{sid}")
    assert {"data", "summary.txt"} <= {n["name"] for n in tree["tree"]}
    checkpoint = next(e for e in events if e["type"] == "checkpoint")
    assert checkpoint["added"] == 1
    await api(f"agents/{sid}/checkpoints/1/restore", method="POST", body={})
    assert not (folder / "summary.txt").exists()
    assert (folder / "data" / "notes.txt").read_text() == "the user's notes\n"
    details = await api(f"agents/sessions/{sid}")
    assert details["folder"] == "project" and details["workspace_readonly"] is False

    await api(f"agents/sessions/{sid}", method="DELETE", params={"purge": "true"})
    assert (folder / "data" / "notes.txt").read_text() == "the user's notes\n"


async def test_two_sessions_in_overlapping_folders_need_share_workspace(
    api: Any, launched: Any, jp_root_dir: Path
) -> None:
    _project(jp_root_dir)
    first = await launched("code-assistant", workspace="project", name="analysis")
    for nested in ("project", "project/data", ""):
        reply = await expect_error(
            api(
                "agents/launch",
                method="POST",
                body={"config_id": "code-assistant", "workspace": nested},
            ),
            409,
        )
        assert first["session_id"] in reply["message"] and "share_workspace" in reply["message"]
    shared = await launched("code-assistant", workspace="project/data", share_workspace=True)
    assert shared["folder"] == "project/data"
    # a stopped session holds no folder
    await api(f"agents/sessions/{first['session_id']}", method="DELETE")
    await api(f"agents/sessions/{shared['session_id']}", method="DELETE")
    again = await launched("code-assistant", workspace="project")
    assert again["folder"] == "project"


async def test_bad_folders_get_a_400_that_says_what_to_fix(
    api: Any, jp_root_dir: Path, agent_dirs: dict[str, Path]
) -> None:
    _project(jp_root_dir)
    (jp_root_dir / "file.txt").write_text("x")
    outside = agent_dirs["base"] / "outside"
    outside.mkdir()
    os.symlink(outside, jp_root_dir / "escape")
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"workspace": "../outside"}, "workspace", ".."),
        ({"workspace": "/etc"}, "workspace", "outside the Jupyter tree"),
        ({"workspace": "missing"}, "workspace", "does not exist"),
        ({"workspace": "file.txt"}, "workspace", "is not a folder"),
        ({"workspace": "escape"}, "workspace", "leads out of the Jupyter tree"),
        ({"workspace": "a\x00b"}, "workspace", "NUL"),
        ({"workspace": 3}, "workspace", "folder of the Jupyter tree"),
        ({"workspace": "project", "workspace_readonly": "yes"}, "workspace_readonly", "true"),
        ({"workspace_readonly": True}, "workspace_readonly", "needs a workspace"),
        ({"share_workspace": True}, "share_workspace", "needs a workspace"),
        # nothing mounts a folder read-only for the local provider
        ({"workspace": "project", "workspace_readonly": True}, "workspace_readonly", "docker"),
    ]
    for extra, field, says in cases:
        body = {"config_id": "code-assistant", **extra}
        reply = await expect_error(api("agents/launch", method="POST", body=body), 400)
        assert reply.get("field") == field, (extra, reply)
        assert says.lower() in reply["message"].lower(), (extra, reply)
    assert (await api("agents/sessions"))["sessions"] == []  # nothing was launched


async def test_the_storage_limit_counts_what_the_agent_adds_to_the_folder(
    api: Any, launched: Any, jp_root_dir: Path
) -> None:
    folder = _project(jp_root_dir)
    big = folder / "data" / "dataset.bin"
    big.write_bytes(os.urandom(80 * 1024 * 1024))
    if os.geteuid() == 0:
        os.chown(big, AGENT.pw_uid, AGENT.pw_gid)
    config = {
        "id": "tiny-disk",
        "name": "tiny disk",
        "allowed_tools": ["Bash"],
        "resource_limits": {"cpu": 1, "memory": "1g", "storage": "64m"},
    }
    session = await launched(config=config, workspace="project")
    # the user's 80 MiB are not the agent's: a 64 MiB limit still lets it take turns
    events = await chat_sse(api, session["session_id"], "hello")
    assert events[-1]["type"] == "done"
    assert not [e for e in events if e["type"] == "error"], events
