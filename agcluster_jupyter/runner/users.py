"""The agent user: who the claude CLI runs as when the runner is root (light to import)."""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass

__all__ = ["AgentUser", "resolve_agent_user"]


@dataclass(frozen=True)
class AgentUser:
    """The unprivileged account the CLI runs as when the runner is root."""

    name: str
    uid: int
    gid: int


def resolve_agent_user(spec: str | None) -> AgentUser | None:
    """``--agent-user`` → an account; None when not given or when not running as root.

    Raises ``ValueError`` for an unknown user (it must have a passwd entry: the SDK
    spawns the CLI by user *name*).
    """
    if not spec or os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwuid(int(spec)) if spec.isdigit() else pwd.getpwnam(spec)
    except KeyError:
        raise ValueError(f"--agent-user {spec!r}: no such user in /etc/passwd") from None
    if entry.pw_uid == 0:
        raise ValueError(f"--agent-user {spec!r} is root; name an unprivileged user")
    return AgentUser(entry.pw_name, entry.pw_uid, entry.pw_gid)
