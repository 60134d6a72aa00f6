"""Per-turn checkpoints through the REST API, with the real claude CLI running real Bash
and Write tools against the scripted model (local provider)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from ..support import chat_sse, expect_error

SCENARIOS = [
    {
        "match": "tidy the notes",
        "steps": [
            [
                {
                    "tool_use": {
                        "name": "Bash",
                        "input": {"command": "rm old.txt && echo 'line three' >> log.txt"},
                    }
                }
            ]
        ],
        "final": "Tidied.",
    },
    {
        "match": "write a report",
        "steps": [
            [
                {
                    "tool_use": {
                        "name": "Write",
                        "input": {"file_path": "{cwd}/report.md", "content": "# Report\nok\n"},
                    }
                }
            ]
        ],
        "final": "Written.",
    },
]


@pytest.fixture
def scenarios(scripted_model: Any) -> None:
    scripted_model.add_scenarios(SCENARIOS)


async def _session_with_files(launched: Any) -> tuple[str, Path]:
    session = await launched("code-assistant")
    workspace = Path(session["workspace"])
    (workspace / "old.txt").write_text("to be removed\n")
    (workspace / "log.txt").write_text("line one\nline two\n")
    owner = os.stat(workspace)
    for name in ("old.txt", "log.txt"):  # as an upload would leave them: the agent's
        os.chown(workspace / name, owner.st_uid, owner.st_gid)
    return session["session_id"], workspace


@pytest.mark.usefixtures("scenarios")
async def test_each_turn_is_a_checkpoint_that_restores_and_undoes(api: Any, launched: Any) -> None:
    sid, workspace = await _session_with_files(launched)

    events = await chat_sse(api, sid, "tidy the notes")
    checkpoint = next(e for e in events if e["type"] == "checkpoint")
    assert [e["type"] for e in events][-2:] == ["checkpoint", "done"]
    assert checkpoint["turn"] == 1
    assert (checkpoint["deleted"], checkpoint["modified"], checkpoint["added"]) == (1, 1, 0)
    assert checkpoint["lines_added"] == 1 and checkpoint["lines_removed"] == 1  # rm'd file

    events = await chat_sse(api, sid, "write a report")
    checkpoint = next(e for e in events if e["type"] == "checkpoint")
    assert checkpoint["turn"] == 2 and checkpoint["added"] == 1 and checkpoint["files_changed"] == 1

    listed = await api(f"agents/{sid}/checkpoints")
    assert [c["turn"] for c in listed["checkpoints"]] == [1, 2]
    assert listed["checkpoints"][0]["prompt"] == "tidy the notes"
    assert (await api(f"agents/sessions/{sid}"))["checkpoints"] == 2

    diff = await api(f"agents/{sid}/checkpoints/1/diff")
    by_path = {f["path"]: f for f in diff["files"]}
    assert {p: f["status"] for p, f in by_path.items()} == {
        "log.txt": "modified",
        "old.txt": "deleted",
    }
    assert "+line three" in by_path["log.txt"]["diff"]
    diff2 = await api(f"agents/{sid}/checkpoints/2/diff", params={"path": "report.md"})
    assert [f["path"] for f in diff2["files"]] == ["report.md"]

    # back to before turn 1: the deleted file and the old content return, the report goes
    restored = await api(f"agents/{sid}/checkpoints/1/restore", method="POST", body={})
    assert restored == {"turn": 1, "restored": ["log.txt", "old.txt", "report.md"]}
    assert (workspace / "old.txt").read_text() == "to be removed\n"
    assert (workspace / "log.txt").read_text() == "line one\nline two\n"
    assert not (workspace / "report.md").exists()

    undone = await api(f"agents/{sid}/undo", method="POST", body={})
    assert undone["restored"] == ["log.txt", "old.txt", "report.md"]
    assert not (workspace / "old.txt").exists()
    assert (workspace / "report.md").read_text() == "# Report\nok\n"
    await expect_error(api(f"agents/{sid}/undo", method="POST", body={}), 409)

    # some paths only
    restored = await api(
        f"agents/{sid}/checkpoints/1/restore", method="POST", body={"paths": ["log.txt"]}
    )
    assert restored["restored"] == ["log.txt"]
    assert (workspace / "report.md").exists() and not (workspace / "old.txt").exists()

    # the agent goes on working on restored files (they are its own, not the server's)
    st = os.stat(workspace / "log.txt")
    assert (st.st_uid, st.st_gid) == (os.stat(workspace).st_uid, os.stat(workspace).st_gid)


@pytest.mark.usefixtures("scenarios")
async def test_bad_checkpoint_requests_get_clear_4xx(api: Any, launched: Any) -> None:
    sid, workspace = await _session_with_files(launched)
    await chat_sse(api, sid, "tidy the notes")
    for bad in ["../etc/passwd", "/etc/passwd", "a/../../b"]:
        reply = await expect_error(
            api(f"agents/{sid}/checkpoints/1/restore", method="POST", body={"paths": [bad]}),
            400,
        )
        assert reply["field"] == "paths"
        await expect_error(api(f"agents/{sid}/checkpoints/1/diff", params={"path": bad}), 400)
    assert not (workspace / "old.txt").exists()  # nothing was restored by any of them
    await expect_error(api(f"agents/{sid}/checkpoints/7/diff"), 404)
    await expect_error(api(f"agents/{sid}/checkpoints/x/diff"), 400)
    await expect_error(api(f"agents/{sid}/checkpoints/0/restore", method="POST", body={}), 400)
    reply = await expect_error(
        api(f"agents/{sid}/checkpoints/1/restore", method="POST", body={"paths": "old.txt"}),
        400,
    )
    assert "list" in reply["message"]
    await expect_error(
        api(f"agents/{sid}/checkpoints/1/restore", method="POST", body={"turn": 1}), 400
    )
    await expect_error(api("agents/nope_1/checkpoints"), 404)
