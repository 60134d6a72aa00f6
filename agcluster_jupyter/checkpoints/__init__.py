"""Per-turn checkpoints of a session's workspace: the store, the diffs, restore and undo.

``store.py`` snapshots a workspace into a dulwich object store (outside the workspace);
``diff.py`` says what changed between two snapshots; ``restore.py`` writes recorded
files back by the upload path rules; ``history.py`` is one session's checkpoints.
"""

from __future__ import annotations

from .history import CheckpointHistory

__all__ = ["CheckpointHistory"]
