"""A fork's starting point: the parent's files (at a checkpoint, or now) and a copy of its
conversation, put into the new session's folders before its runner starts (docker,
local), or handed from the parent's runner to the child's (kubernetes, fly:
:func:`export_conversation`, :func:`import_conversation`).

The conversation is the claude CLI's transcript: the SDK's offline ``fork_session``
copies it up to a message (with fresh ids) in the parent's config dir; the copy then
moves to the new session's config dir, under the project folder the CLI derives from
its working directory, so ``--resume`` finds it there.  The parent's transcript is
never changed.  Blocking: the manager runs it in a worker thread.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from ..checkpoints.conversation import find_transcript, fork_transcript, transcript_target
from ..checkpoints.restore import apply_files
from ..checkpoints.store import SnapshotStore
from ..runner.protocol import CONVERSATION_HEADER
from ..workspace.remote import raise_for_runner, runner_not_running

if TYPE_CHECKING:
    from .session import Session

__all__ = ["copy_conversation", "copy_files", "export_conversation", "import_conversation"]


def copy_files(store: SnapshotStore, tree: bytes, workspace: Path) -> int:
    """The snapshot ``tree`` of ``store`` written into the (empty) ``workspace``."""
    files = store.files(tree)
    return len(apply_files(store, workspace, files, {}, files))


def copy_conversation(
    parent_config: Path, conversation: str, at: str | None, child_config: Path, child_cwd: str
) -> str:
    """A copy of ``conversation`` (up to message ``at``, else whole) for the child; its id."""
    forked = fork_transcript(parent_config, conversation, at)
    made = find_transcript(parent_config, forked)
    target = transcript_target(child_config, child_cwd, forked)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(made), target)
    return forked


async def export_conversation(
    parent: Session, conversation: str, at: str | None
) -> tuple[str, bytes]:
    """A copy of the parent's conversation (up to message ``at``), made by its runner:
    the copy's id and its transcript."""
    try:
        async with parent.runner_channel(120.0) as client:
            response = await client.post(
                "/conversation/export", json={"conversation": conversation, "at": at}
            )
            await raise_for_runner(response)
    except httpx.HTTPError as exc:
        raise runner_not_running(f"{type(exc).__name__}: {exc}") from None
    return response.headers[CONVERSATION_HEADER], response.content


async def import_conversation(child: Session, conversation: str, transcript: bytes) -> None:
    """The transcript where the child's CLI finds it when it resumes ``conversation``."""
    try:
        async with child.runner_channel(120.0) as client:
            response = await client.put(
                "/conversation/import", params={"id": conversation}, content=transcript
            )
            await raise_for_runner(response)
    except httpx.HTTPError as exc:
        raise runner_not_running(f"{type(exc).__name__}: {exc}") from None
