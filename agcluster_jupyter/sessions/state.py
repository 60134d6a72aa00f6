"""The session state machine of DESIGN.md, as data."""

from __future__ import annotations

from ..events import SessionState

__all__ = ["ACTIVE_STATES", "CHATTABLE_STATES", "TRANSITIONS", "can_transition"]

TRANSITIONS: dict[SessionState, frozenset[SessionState]] = {
    "starting": frozenset({"ready", "failed", "stopping"}),
    "ready": frozenset({"busy", "idle", "stopping", "failed"}),
    "busy": frozenset({"idle", "stopping", "failed"}),
    "idle": frozenset({"busy", "stopping", "failed"}),
    "stopping": frozenset({"stopped", "failed"}),
    # a stopped or failed session can be started again: its runner resumes the conversation
    "stopped": frozenset({"starting"}),
    "failed": frozenset({"starting", "stopping", "stopped"}),
}

#: states in which a runner exists
ACTIVE_STATES: frozenset[SessionState] = frozenset({"starting", "ready", "busy", "idle"})
#: states in which a chat message is taken at once
CHATTABLE_STATES: frozenset[SessionState] = frozenset({"ready", "idle"})


def can_transition(old: SessionState, new: SessionState) -> bool:
    return new in TRANSITIONS[old]
