"""Per-turn checkpoints through the REST API, with the real claude CLI running real Bash
and Write tools against the scripted model (local provider)."""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from ..support import chat_sse, expect_error, parse_sse

SCENARIOS = [
    {
        "match": "make a hostile name",
        "steps": [
            [
                {
                    "tool_use": {
                        "name": "Bash",
                        "input": {
                            "command": "echo '<b>x</b>' > '<img src=x onerror=alert(1)>.txt'"
                        },
                    }
                }
            ]
        ],
        "final": "Made.",
    },
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


HostWorkspace = Callable[[dict[str, Any]], Awaitable[Path]]


@pytest.fixture
def host_workspace() -> HostWorkspace:
    """Where a launched session's workspace is on this host (here: the folder it names;
    the remote tests look it up on the fake node)."""

    async def find(session: dict[str, Any]) -> Path:
        return Path(session["workspace"])

    return find


async def _session_with_files(launched: Any, host_workspace: HostWorkspace) -> tuple[str, Path]:
    session = await launched("code-assistant")
    workspace = await host_workspace(session)
    (workspace / "old.txt").write_text("to be removed\n")
    (workspace / "log.txt").write_text("line one\nline two\n")
    owner = os.stat(workspace)
    for name in ("old.txt", "log.txt"):  # as an upload would leave them: the agent's
        os.chown(workspace / name, owner.st_uid, owner.st_gid)
    return session["session_id"], workspace


@pytest.mark.usefixtures("scenarios")
async def test_each_turn_is_a_checkpoint_that_restores_and_undoes(
    api: Any, launched: Any, host_workspace: Any
) -> None:
    sid, workspace = await _session_with_files(launched, host_workspace)

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
    # no notebook outside the workspace was edited: none to put back
    assert restored == {"turn": 1, "restored": ["log.txt", "old.txt", "report.md"], "notebooks": []}
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
async def test_bad_checkpoint_requests_get_clear_4xx(
    api: Any, launched: Any, host_workspace: Any
) -> None:
    sid, workspace = await _session_with_files(launched, host_workspace)
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


def _user_texts(request: Any) -> list[str]:
    """The real user prompts of one model request (no tool results, no reminders)."""
    texts = []
    for message in request.body.get("messages", []):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        for block in blocks or []:
            text = block.get("text", "") if block.get("type") == "text" else ""
            if text and not text.lstrip().startswith("<"):
                texts.append(text.strip())
    return texts


@pytest.mark.usefixtures("scenarios")
async def test_rewind_forgets_the_later_turns_and_undo_brings_them_back(
    api: Any, launched: Any, scripted_model: Any, host_workspace: Any
) -> None:
    sid, workspace = await _session_with_files(launched, host_workspace)
    await chat_sse(api, sid, "tidy the notes")
    await chat_sse(api, sid, "write a report")
    await chat_sse(api, sid, "remember the word PELICAN")
    assert (workspace / "report.md").exists()

    reply = await api(f"agents/{sid}/rewind", method="POST", body={"turn": 2})
    assert reply["turn"] == 2 and "report.md" in reply["restored"]
    assert not (workspace / "report.md").exists() and not (workspace / "old.txt").exists()
    log = parse_sse(await api(f"agents/{sid}/events", params={"follow": "false"}))
    assert {"type": "rewind", "turn": 2}.items() <= log[-1].items()

    seen = len(scripted_model.message_requests)
    events = await chat_sse(api, sid, "what happened so far")
    assert events[-1]["type"] == "done"
    asked = scripted_model.message_requests[seen:]
    prompts = _user_texts(asked[-1])
    # turn 1 is remembered; turns 2 and 3 never happened for the model
    assert "tidy the notes" in prompts and "what happened so far" in prompts, prompts
    assert not any("report" in p or "PELICAN" in p for p in prompts), prompts
    checkpoint = next(e for e in events if e["type"] == "checkpoint")
    assert checkpoint["turn"] == 4  # turns are never renumbered

    # undo goes back to where the rewind started: the files and the whole conversation
    undone = await api(f"agents/{sid}/undo", method="POST", body={})
    assert undone["undid"] == "rewind" and "report.md" in undone["restored"]
    assert (workspace / "report.md").exists()
    seen = len(scripted_model.message_requests)
    await chat_sse(api, sid, "and now")
    asked = scripted_model.message_requests[seen:]
    prompts = _user_texts(asked[-1])
    assert any("PELICAN" in p for p in prompts), prompts


@pytest.mark.usefixtures("scenarios")
async def test_rewind_to_the_first_turn_starts_a_new_conversation(
    api: Any, launched: Any, scripted_model: Any, host_workspace: Any
) -> None:
    sid, workspace = await _session_with_files(launched, host_workspace)
    await chat_sse(api, sid, "tidy the notes")
    reply = await api(f"agents/{sid}/rewind", method="POST", body={"turn": 1})
    assert reply["restored"] == ["log.txt", "old.txt"]
    assert (workspace / "old.txt").read_text() == "to be removed\n"
    seen = len(scripted_model.message_requests)
    await chat_sse(api, sid, "hello again")
    asked = scripted_model.message_requests[seen:]
    assert _user_texts(asked[-1]) == ["hello again"]
    for body in ({}, {"turn": 0}, {"turn": "1"}, {"turn": True}, {"turn": 1, "x": 1}):
        await expect_error(api(f"agents/{sid}/rewind", method="POST", body=body), 400)
    await expect_error(api(f"agents/{sid}/rewind", method="POST", body={"turn": 9}), 404)


@pytest.mark.usefixtures("scenarios")
async def test_a_fork_has_the_files_and_the_memory_and_leaves_its_parent_alone(
    api: Any, launched: Any, scripted_model: Any, host_workspace: Any
) -> None:
    sid, workspace = await _session_with_files(launched, host_workspace)
    await chat_sse(api, sid, "tidy the notes")
    await chat_sse(api, sid, "write a report")

    fork = await api(f"agents/{sid}/fork", method="POST", body={"name": "try B"})
    child = fork["session_id"]
    assert fork["forked_from"] == {"session_id": sid, "turn": None}
    child_ws = await host_workspace(fork)
    assert (child_ws / "report.md").read_text() == "# Report\nok\n"
    assert (child_ws / "log.txt").read_text() == "line one\nline two\nline three\n"
    details = await api(f"agents/sessions/{child}")
    assert details["forked_from"] == {"session_id": sid, "turn": None}
    assert details["name"] == "try B"

    seen = len(scripted_model.message_requests)
    events = await chat_sse(api, child, "what do you remember")
    assert events[-1]["type"] == "done"
    prompts = _user_texts(scripted_model.message_requests[seen:][-1])
    assert "tidy the notes" in prompts and "write a report" in prompts, prompts
    (child_ws / "report.md").unlink()  # the fork's own work
    assert (workspace / "report.md").exists()  # the parent is untouched

    # from before turn 2: turn 1's files and memory only
    early = await api(f"agents/{sid}/fork", method="POST", body={"turn": 2})
    early_ws = await host_workspace(early)
    assert not (early_ws / "report.md").exists() and not (early_ws / "old.txt").exists()
    seen = len(scripted_model.message_requests)
    await chat_sse(api, early["session_id"], "and you")
    prompts = _user_texts(scripted_model.message_requests[seen:][-1])
    assert "tidy the notes" in prompts and not any("report" in p for p in prompts), prompts
    # two forks that went different ways, side by side
    (child_ws / "only-b.txt").write_text("b\n")
    (early_ws / "only-a.txt").write_text("a\n")
    with (early_ws / "log.txt").open("a") as log_file:
        log_file.write("line four\n")
    compared = await api(f"agents/{child}/compare/{early['session_id']}")
    by_path = {f["path"]: f for f in compared["files"]}
    assert {p: f["status"] for p, f in by_path.items()} == {
        "log.txt": "modified",
        "only-a.txt": "added",  # only in the other
        "only-b.txt": "deleted",  # only in this one
    }
    assert "+line four" in by_path["log.txt"]["diff"]
    await expect_error(api(f"agents/{child}/compare/{child}"), 400)
    await expect_error(api(f"agents/{child}/compare/nope_1"), 404)
    for body in ({"turn": 0}, {"turn": "2"}, {"name": 3}, {"x": 1}):
        await expect_error(api(f"agents/{sid}/fork", method="POST", body=body), 400)
    await expect_error(api(f"agents/{sid}/fork", method="POST", body={"turn": 9}), 404)
    for extra in (child, early["session_id"]):
        await api(f"agents/sessions/{extra}", method="DELETE", params={"purge": "true"})


@pytest.mark.usefixtures("scenarios")
async def test_exports_mark_each_turns_file_changes(
    api: Any, launched: Any, host_workspace: Any
) -> None:
    sid, _ = await _session_with_files(launched, host_workspace)
    await chat_sse(api, sid, "tidy the notes")
    await chat_sse(api, sid, "make a hostile name")
    notebook = json.loads(await api(f"agents/{sid}/export", params={"format": "ipynb"}))
    sources = ["".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "markdown"]
    changes = [s for s in sources if s.startswith("<details><summary>")]
    assert len(changes) == 2, sources
    assert "2 files changed (+0 ~1 -1; lines +1 -1)" in changes[0]
    assert "<code>log.txt</code> (modified)" in changes[0] and "+line three" in changes[0]
    # the agent's file name and content are text in the export, never markup
    assert "&lt;img src=x onerror=alert(1)&gt;.txt" in changes[1]
    assert "<img" not in changes[1] and "<b>" not in changes[1]
    markdown = await api(f"agents/{sid}/export", params={"format": "md"})
    assert "<details><summary>2 files changed" in markdown and "+line three" in markdown
