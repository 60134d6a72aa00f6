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

    ``spec`` is a name, a uid (both looked up in /etc/passwd) or ``uid:gid`` (taken as
    is).  Raises ``ValueError`` for an unknown user or root.
    """
    if not spec or os.geteuid() != 0:
        return None
    uid_text, colon, gid_text = spec.partition(":")
    if colon and uid_text.isdigit() and gid_text.isdigit():
        # uid:gid: the Jupyter user's ids inside a container whose image has no entry
        # for them (the CLI is started by uid)
        uid, gid = int(uid_text), int(gid_text)
        try:
            name = pwd.getpwuid(uid).pw_name
        except KeyError:
            name = str(uid)
        user = AgentUser(name, uid, gid)
    else:
        try:
            entry = pwd.getpwuid(int(spec)) if spec.isdigit() else pwd.getpwnam(spec)
        except KeyError:
            raise ValueError(f"--agent-user {spec!r}: no such user in /etc/passwd") from None
        user = AgentUser(entry.pw_name, entry.pw_uid, entry.pw_gid)
    if user.uid == 0:
        raise ValueError(f"--agent-user {spec!r} is root; name an unprivileged user")
    return user
