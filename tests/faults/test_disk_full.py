"""The workspace disk full: the workspace root is a 4 MiB tmpfs, and the agent fills it."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..support import chat_sse, expect_error
from .helpers import assert_gapless, conversation, event_log

pytestmark = pytest.mark.cli

FILL = {
    "match": "fill the disk",
    "steps": [
        [
            {
                "tool_use": {
                    "name": "Bash",
                    "input": {
                        "command": "echo kept > kept.txt; head -c 8M /dev/zero > big.bin; "
                        "echo exit=$?"
                    },
                }
            }
        ],
        [
            {
                "tool_use": {
                    "name": "Write",
                    "input": {"file_path": "{cwd}/notes.txt", "content": "x" * 65536},
                }
            }
        ],
    ],
    "final": "The disk is full.",
}
CLEAN_UP = {
    "match": "clean up",
    "steps": [
        [{"tool_use": {"name": "Bash", "input": {"command": "rm big.bin notes.txt; df -h ."}}}]
    ],
    "final": "Cleaned up.",
}


@pytest.fixture
def small_disk(agent_dirs: dict[str, Path]) -> Iterator[Path]:
    """A 4 MiB tmpfs, mounted for the test and unmounted after the server stopped."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    root = agent_dirs["base"] / "small-disk"
    root.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m,mode=0755", "agc-faults-disk", str(root)],
        check=True,
    )
    try:
        yield root
    finally:
        subprocess.run(["umount", "--lazy", str(root)], check=True)


@pytest.fixture
def agcluster_config(small_disk: Path) -> dict[str, Any]:
    return {"workspace_root": str(small_disk)}


UPLOAD = (
    b'--xx\r\nContent-Disposition: form-data; name="files"; filename="up.bin"\r\n\r\n'
    + b"u" * 1_000_000
    + b"\r\n--xx--\r\n"
)


async def upload(api: Any, session_id: str) -> Any:
    return await api(
        f"files/{session_id}/upload",
        method="POST",
        body=UPLOAD,
        headers={"Content-Type": "multipart/form-data; boundary=xx"},
    )


async def test_a_full_workspace_disk_fails_tools_and_uploads_not_the_session(
    api: Any, launched: Any, scripted_model: Any, small_disk: Path
) -> None:
    """The agent fills the disk: the user sees its tools fail with "No space left on
    device" (Bash's output, Write's error) and the agent's answer, and the turn ends
    normally; an upload gets 413 "the workspace disk is full; nothing was written".
    Files written before, the event log (on another disk) and the session survive: once
    the agent frees the space, uploads work again and the conversation goes on."""
    scripted_model.add_scenarios([FILL, CLEAN_UP])
    session = await launched()
    sid = session["session_id"]
    workspace = Path(session["workspace"])
    assert workspace.parent == small_disk
    events = await chat_sse(api, sid, "remember PELICAN, then fill the disk")
    bash, write = [e for e in events if e["type"] == "tool_result"]
    assert "No space left on device" in bash["output"] and "exit=1" in bash["output"]
    assert write["is_error"] and "ENOSPC" in write["output"]
    assert "The disk is full." in [e["text"] for e in events if e["type"] == "message"]
    assert events[-1]["type"] == "done" and not [e for e in events if e["type"] == "error"]
    assert (await api(f"agents/sessions/{sid}"))["state"] == "idle"
    assert (workspace / "kept.txt").read_text() == "kept\n"

    reply = await expect_error(upload(api, sid), 413)
    assert reply["message"] == "the workspace disk is full; nothing was written"
    assert not (workspace / "up.bin").exists()

    scripted_model.reset()
    events = await chat_sse(api, sid, "clean up the big file")
    assert events[-1]["type"] == "done" and not [e for e in events if e["type"] == "error"]
    assert not (workspace / "big.bin").exists()
    assert [u["path"] for u in (await upload(api, sid))["uploaded"]] == ["up.bin"]
    request = next(r for r in scripted_model.message_requests if "clean up" in r.prompt)
    assert "PELICAN" in conversation(request)
    assert (workspace / "kept.txt").read_text() == "kept\n"
    assert_gapless(await event_log(api, sid))
