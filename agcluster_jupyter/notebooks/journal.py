"""Undo for notebook edits outside the session's workspace.

The workspace's checkpoints (``checkpoints/``) cover what lies in the workspace folder;
a notebook granted by the launch's ``notebooks`` or by the ``%%agent`` cell that started
the session may lie elsewhere in the tree.  Before the agent's first edit of such a
notebook in a turn, the journal keeps its content as it was (or that it did not exist),
so a restore or rewind to before turn ``n`` also puts back every such notebook the agent
edited in turn ``n`` or later, and the undo of that restore puts the agent's version back.

One JSON file (``notebook-journal.json`` in the session's record folder, 0600),
rewritten whole through a temp file: a crash leaves the old one or the new one.
Blocking; callers run it in a worker thread.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

__all__ = ["NotebookJournal"]

#: undo records kept (the checkpoint history keeps as many)
MAX_UNDO = 20


class NotebookJournal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._data: dict[str, Any] = self._load()

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {"entries": [], "undo": []}
        if not isinstance(data, dict):
            return {"entries": [], "undo": []}
        data.setdefault("entries", [])
        data.setdefault("undo", [])
        return data

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".json.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(self._data, fh)
        os.replace(tmp, self.path)

    def record(self, turn: int, api_path: str, before: dict[str, Any] | None) -> bool:
        """Keep ``before`` (None: the notebook did not exist) unless this turn already
        has the notebook's earlier content; True when it was kept now."""
        with self._lock:
            entries = self._data["entries"]
            if any(e["turn"] == turn and e["path"] == api_path for e in entries):
                return False
            entries.append({"turn": turn, "path": api_path, "before": before})
            self._save()
            return True

    def edited(self) -> list[str]:
        """Every notebook the journal holds an earlier content of."""
        with self._lock:
            return sorted({e["path"] for e in self._data["entries"]})

    def targets(self, turn: int) -> dict[str, dict[str, Any] | None]:
        """What a restore to before ``turn`` writes: per notebook edited in ``turn`` or
        later, its content before the earliest such edit (None: delete it)."""
        with self._lock:
            out: dict[str, dict[str, Any] | None] = {}
            for entry in sorted(self._data["entries"], key=lambda e: e["turn"]):
                if entry["turn"] >= turn and entry["path"] not in out:
                    out[entry["path"]] = entry["before"]
            return out

    def push_undo(self, tag: dict[str, Any], replaced: dict[str, dict[str, Any] | None]) -> None:
        """After a restore: what it replaced, under the checkpoint history's undo record
        ``tag`` (so the undo of that very restore finds it)."""
        with self._lock:
            stack = self._data["undo"]
            stack.append({"tag": tag, "replaced": replaced})
            del stack[:-MAX_UNDO]
            self._save()

    def pop_undo(self, tag: dict[str, Any]) -> dict[str, dict[str, Any] | None] | None:
        """The contents the restore tagged ``tag`` replaced (None: no such record on top)."""
        with self._lock:
            stack = self._data["undo"]
            if not stack or stack[-1]["tag"] != tag:
                return None
            replaced: dict[str, dict[str, Any] | None] = stack.pop()["replaced"]
            self._save()
            return replaced
