"""A fork's starting point: the parent's files (at a checkpoint, or now) and a copy of its
conversation, put into the new session's folders before its runner starts.

The conversation is the claude CLI's transcript: the SDK's offline ``fork_session``
copies it up to a message (with fresh ids) in the parent's config dir; the copy then
moves to the new session's config dir, under the project folder the CLI derives from
its working directory, so ``--resume`` finds it there.  The parent's transcript is
never changed.  Blocking: the manager runs it in a worker thread.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from ..checkpoints.restore import apply_files
from ..checkpoints.store import SnapshotStore

__all__ = ["copy_conversation", "copy_files"]


def copy_files(store: SnapshotStore, tree: bytes, workspace: Path) -> int:
    """The snapshot ``tree`` of ``store`` written into the (empty) ``workspace``."""
    files = store.files(tree)
    return len(apply_files(store, workspace, files, {}, files))


def _project_folder(cwd: str) -> str:
    """The CLI's folder name for a working directory (the SDK's own rule when it has one)."""
    try:
        from claude_agent_sdk._internal.sessions import _sanitize_path

        return str(_sanitize_path(cwd))
    except ImportError:  # pragma: no cover - an SDK that moved it
        return re.sub(r"[^a-zA-Z0-9]", "-", cwd)


def copy_conversation(
    parent_config: Path, conversation: str, at: str | None, child_config: Path, child_cwd: str
) -> str:
    """A copy of ``conversation`` (up to message ``at``, else whole) for the child; its id."""
    from claude_agent_sdk import fork_session

    previous = os.environ.get("CLAUDE_CONFIG_DIR")
    os.environ["CLAUDE_CONFIG_DIR"] = str(parent_config)  # where the SDK looks
    try:
        forked = str(fork_session(conversation, up_to_message_id=at).session_id)
    finally:
        if previous is None:
            os.environ.pop("CLAUDE_CONFIG_DIR", None)
        else:
            os.environ["CLAUDE_CONFIG_DIR"] = previous
    made = sorted((parent_config / "projects").glob(f"*/{forked}.jsonl"))
    if not made:
        raise FileNotFoundError(f"the forked conversation {forked} was not written")
    target = child_config / "projects" / _project_folder(child_cwd)
    target.mkdir(parents=True, exist_ok=True)
    shutil.move(str(made[0]), target / made[0].name)
    return forked
