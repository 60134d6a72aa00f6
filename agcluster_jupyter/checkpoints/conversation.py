"""The claude CLI's transcripts, as rewinds and forks copy them: one place for the SDK's
offline ``fork_session`` and for where the CLI keeps a conversation.

The CLI keeps conversation ``id`` in ``<config dir>/projects/<project>/<id>.jsonl``,
``<project>`` being its working directory with every non-alphanumeric character made a
dash.  ``fork_session`` copies a transcript (up to a message, with fresh ids) next to
the original and never changes the original.  It finds the config dir through
``CLAUDE_CONFIG_DIR`` only, so the environment is set around the call: both callers
(the runner, one session per process; the server, from one worker thread per fork)
hold :data:`_ENV_LOCK` for it.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

__all__ = ["find_transcript", "fork_transcript", "project_folder", "transcript_target"]

_ENV_LOCK = threading.Lock()
#: what a conversation id may look like (the CLI's are UUIDs)
CONVERSATION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")


def fork_transcript(config_dir: Path, conversation: str, at: str | None) -> str:
    """A copy of ``conversation`` up to and including message ``at`` (None: whole) in
    ``config_dir``; the copy's conversation id."""
    from claude_agent_sdk import fork_session

    with _ENV_LOCK:
        previous = os.environ.get("CLAUDE_CONFIG_DIR")
        os.environ["CLAUDE_CONFIG_DIR"] = str(config_dir)
        try:
            return str(fork_session(conversation, up_to_message_id=at).session_id)
        finally:
            if previous is None:
                os.environ.pop("CLAUDE_CONFIG_DIR", None)
            else:
                os.environ["CLAUDE_CONFIG_DIR"] = previous


def find_transcript(config_dir: Path, conversation: str) -> Path:
    """The transcript file of ``conversation`` in ``config_dir``; FileNotFoundError."""
    if not CONVERSATION_ID.match(conversation):
        raise FileNotFoundError(f"{conversation!r} is no conversation id")
    made = sorted((config_dir / "projects").glob(f"*/{conversation}.jsonl"))
    if not made:
        raise FileNotFoundError(f"the conversation {conversation} has no transcript here")
    return made[0]


def project_folder(cwd: str) -> str:
    """The CLI's folder name for a working directory (the SDK's own rule when it has one)."""
    try:
        from claude_agent_sdk._internal.sessions import _sanitize_path

        return str(_sanitize_path(cwd))
    except ImportError:  # pragma: no cover - an SDK that moved it
        return re.sub(r"[^a-zA-Z0-9]", "-", cwd)


def transcript_target(config_dir: Path, cwd: str, conversation: str) -> Path:
    """Where the CLI working in ``cwd`` looks for ``conversation`` when it resumes it."""
    if not CONVERSATION_ID.match(conversation):
        raise ValueError(f"{conversation!r} is no conversation id")
    return config_dir / "projects" / project_folder(cwd) / f"{conversation}.jsonl"
