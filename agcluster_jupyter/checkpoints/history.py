"""One session's checkpoints: checkpoint ``n`` is the workspace just before turn ``n``.

``begin_turn(n, prompt)`` records it; ``end_turn(n)`` records the workspace as the turn
left it and returns the ``checkpoint`` event's figures (what turn ``n`` changed).  A
change made between turns (an upload, the user editing in Jupyter) is the difference
between turn ``n-1``'s end and checkpoint ``n``: attributed to no turn.

``restore(n, paths)`` puts the workspace (or those paths) back as checkpoint ``n`` holds
it, after recording what it replaces, so ``undo()`` can put that back (the paths the
restore changed, only: later turns' work elsewhere stays).  The manifest
(``manifest.json``, next to the objects, outside the workspace) is rewritten whole
through a temp file, so a crash leaves the old one or the new one.

Past ``max_bytes`` of objects, the oldest checkpoints are dropped with the objects only
they used, and ``listing()`` says from which turn on the history is kept
(``pruned_before``).
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from ..errors import BadRequest, Conflict, NotFound
from ..events import now_iso
from ..workspace.paths import split_path
from .diff import changes, file_diff, summarize
from .restore import apply_files
from .store import Entry, SnapshotStore

__all__ = ["CheckpointHistory"]

#: restores and rewinds ``undo`` can reverse, newest last
MAX_UNDO = 20
PROMPT_CHARS = 200


class CheckpointHistory:
    """Blocking; callers run it in an executor.  One lock serialises its calls."""

    def __init__(
        self,
        store_dir: Path,
        workspace: Path,
        max_bytes: int,
        pool: Path | None = None,
        *,
        reachable_by_agent: bool = False,
    ) -> None:
        self.store = SnapshotStore(
            store_dir, workspace, pool, reachable_by_agent=reachable_by_agent
        )
        self.workspace = workspace
        self.max_bytes = max_bytes
        self._manifest_path = store_dir / "manifest.json"
        self._lock = threading.Lock()
        self._manifest = self._load()

    # -- turns ---------------------------------------------------------------------------

    def begin_turn(self, turn: int, prompt: str) -> None:
        with self._lock:
            tree = self.store.snapshot()
            items = [c for c in self._checkpoints() if c["turn"] != turn]
            items.append(
                {
                    "turn": turn,
                    "created_at": now_iso(),
                    "prompt": prompt.strip()[:PROMPT_CHARS],
                    "before": tree.decode(),
                    "after": None,
                    "summary": None,
                }
            )
            self._manifest["checkpoints"] = items
            self._save()

    def end_turn(self, turn: int, anchor: dict[str, str] | None = None) -> dict[str, int] | None:
        """What turn ``turn`` changed (None when it has no checkpoint).  ``anchor``: where
        the conversation stood at its end (``{conversation, message}``), for rewinds."""
        with self._lock:
            item = self._find(turn)
            if item is None:
                return None
            after = self.store.snapshot()
            item["after"] = after.decode()
            item["anchor"] = anchor
            found = changes(self._files(item["before"]), self.store.files(after))
            item["summary"] = summarize(self.store, found)
            self._prune()
            self._save()
            return dict(item["summary"])

    # -- reading -------------------------------------------------------------------------

    def listing(self) -> dict[str, Any]:
        with self._lock:
            items = [
                {
                    "turn": c["turn"],
                    "created_at": c["created_at"],
                    "prompt": c["prompt"],
                    **(c["summary"] or _EMPTY_SUMMARY),
                    "finished": c["after"] is not None,
                }
                for c in self._checkpoints()
            ]
            out: dict[str, Any] = {"checkpoints": items, "total": len(items)}
            if self._manifest.get("pruned_before"):
                out["pruned_before"] = self._manifest["pruned_before"]
            return out

    def diff(self, turn: int, path: str | None = None) -> dict[str, Any]:
        """Turn ``turn``'s changes (a running turn: so far), whole or for one path."""
        with self._lock:
            item = self._require(turn)
            before = self._files(item["before"])
            after_tree = item["after"]
            after = (
                self._files(after_tree) if after_tree else self.store.files(self.store.snapshot())
            )
            found = changes(before, after)
            if path is not None:
                wanted = _clean(path, "path")
                found = [c for c in found if c.path == wanted or c.path.startswith(wanted + "/")]
            return {"turn": turn, "files": [file_diff(self.store, c) for c in found]}

    def compare(self, other: CheckpointHistory) -> dict[str, Any]:
        """This workspace now against ``other``'s now (``added``: only in the other)."""
        with self._lock:
            mine = self.store.files(self.store.snapshot())
        with other._lock:
            theirs = other.store.files(other.store.snapshot())
            found = changes(mine, theirs)
            return {"files": [file_diff(self.store, c, other.store) for c in found]}

    def count(self) -> int:
        with self._lock:
            return len(self._checkpoints())

    def snapshot_now(self) -> bytes:
        """The workspace as it is now, recorded; its tree id."""
        with self._lock:
            return self.store.snapshot()

    def locked(self) -> threading.Lock:
        """This history's lock, for work on its store from outside (a fork's seeding)."""
        return self._lock

    # -- restore and undo ----------------------------------------------------------------

    def restore(self, turn: int, paths: list[str] | None = None) -> list[str]:
        """The workspace (or ``paths``: files or folders) as before turn ``turn``."""
        with self._lock:
            target = self._files(self._require(turn)["before"])
            return self._apply(target, paths, kind="restore", turn=turn)

    def peek_undo(self) -> dict[str, Any]:
        """What ``undo`` would reverse (``kind``: restore or rewind, ``conversation``)."""
        with self._lock:
            stack = self._manifest.get("undo") or []
            if not stack:
                raise Conflict("there is no restore or rewind to undo")
            return dict(stack[-1])

    def undo(self) -> list[str]:
        """Reverse the last restore or rewind's files (the paths it changed, as they were)."""
        with self._lock:
            stack = self._manifest.setdefault("undo", [])
            if not stack:
                raise Conflict("there is no restore or rewind to undo")
            last = stack[-1]
            current_tree = self.store.snapshot()
            current = self.store.files(current_tree)
            target = self._files(last["tree"])
            self.store.check(target[p] for p in last["paths"] if p in target)
            changed = apply_files(self.store, self.workspace, target, current, last["paths"])
            stack.pop()
            self._save()
            return changed

    def rewind_point(self, turn: int) -> dict[str, str] | None:
        """Where the conversation resumes for a rewind to before ``turn``: the end of the
        latest earlier turn that has one; None: from the start (a new conversation)."""
        with self._lock:
            self._require(turn)
            earlier = [c for c in self._checkpoints() if c["turn"] < turn and c.get("anchor")]
            if not earlier:
                if turn > 1 and self._manifest.get("pruned_before"):
                    raise Conflict(
                        f"the turns before {turn} were pruned from the checkpoints; rewind "
                        "to a later turn"
                    )
                return None
            anchor: dict[str, str] = earlier[-1]["anchor"]
            return dict(anchor)

    def fork_point(
        self, turn: int | None, conversation: str | None
    ) -> tuple[bytes, dict[str, str] | None]:
        """What a fork starts from: a snapshot (before ``turn``, or now) and where its
        conversation resumes (None: a new one)."""
        if turn is None:
            with self._lock:
                tree = self.store.snapshot()
            return tree, ({"conversation": conversation} if conversation else None)
        point = self.rewind_point(turn)
        with self._lock:
            return str(self._require(turn)["before"]).encode(), point

    def rewind_files(self, turn: int, conversation: str | None) -> list[str]:
        """The whole workspace as before ``turn``, undoable together with the
        conversation it replaces (``conversation``: the id the CLI continued)."""
        with self._lock:
            target = self._files(self._require(turn)["before"])
            return self._apply(target, None, kind="rewind", turn=turn, conversation=conversation)

    def _apply(
        self,
        target: dict[str, Entry],
        paths: list[str] | None,
        *,
        kind: str,
        turn: int,
        conversation: str | None = None,
    ) -> list[str]:
        current_tree = self.store.snapshot()
        current = self.store.files(current_tree)
        if paths is None:
            wanted = set(target) | set(current)
        else:
            prefixes = [_clean(p) for p in paths]
            wanted = {
                p
                for p in set(target) | set(current)
                if any(p == q or p.startswith(q + "/") for q in prefixes)
            }
            missing = [
                q for q in prefixes if not any(p == q or p.startswith(q + "/") for p in wanted)
            ]
            if missing:
                raise NotFound(
                    f"{missing[0]!r} is in neither the checkpoint of turn {turn} nor the "
                    "workspace; name a file or folder of either",
                )
        changed = [p for p in sorted(wanted) if target.get(p) != current.get(p)]
        self.store.check(target[p] for p in changed if p in target)
        stack = self._manifest.setdefault("undo", [])
        stack.append(
            {
                "kind": kind,
                "turn": turn,
                "tree": current_tree.decode(),
                "paths": changed,
                "conversation": conversation,
            }
        )
        del stack[:-MAX_UNDO]
        self._save()  # the undo point is on disk before the first file is touched
        return apply_files(self.store, self.workspace, target, current, changed)

    # -- the manifest --------------------------------------------------------------------

    def _checkpoints(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self._manifest.setdefault("checkpoints", [])
        return items

    def _find(self, turn: int) -> dict[str, Any] | None:
        return next((c for c in self._checkpoints() if c["turn"] == turn), None)

    def _require(self, turn: int) -> dict[str, Any]:
        item = self._find(turn)
        if item is None:
            pruned = self._manifest.get("pruned_before") or 0
            if turn < pruned:
                raise NotFound(
                    f"the checkpoint of turn {turn} was pruned (the store keeps "
                    f"checkpoint_max_bytes); the oldest kept is turn {pruned}"
                )
            raise NotFound(f"there is no checkpoint of turn {turn}; list them at checkpoints")
        return item

    def _files(self, tree_hex: str) -> dict[str, Entry]:
        return self.store.files(tree_hex.encode())

    def _prune(self) -> None:
        if self.store.size_bytes() <= self.max_bytes:
            return
        items = self._checkpoints()
        while len(items) > 1 and self.store.size_bytes() > self.max_bytes:
            items.pop(0)
            self._manifest["pruned_before"] = items[0]["turn"]
            self.store.collect_garbage(self._trees())

    def _trees(self) -> list[bytes]:
        trees = [
            str(t).encode()
            for c in self._checkpoints()
            for t in (c["before"], c["after"])
            if t is not None
        ]
        trees += [str(u["tree"]).encode() for u in self._manifest.get("undo", [])]
        return trees

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self._manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {"checkpoints": [], "undo": []}
        return data if isinstance(data, dict) else {"checkpoints": [], "undo": []}

    def _save(self) -> None:
        tmp = self._manifest_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._manifest, indent=1), encoding="utf-8")
        os.replace(tmp, self._manifest_path)


_EMPTY_SUMMARY = {
    "files_changed": 0,
    "added": 0,
    "modified": 0,
    "deleted": 0,
    "lines_added": 0,
    "lines_removed": 0,
}


def _clean(path: str, field: str = "paths") -> str:
    """A workspace-relative path by the upload rules (no ``..``, absolute, NUL): a 400."""
    parts = split_path(path, field)
    if not parts:
        raise BadRequest(f"{field} must name a file or folder of the workspace", field=field)
    return "/".join(parts)
