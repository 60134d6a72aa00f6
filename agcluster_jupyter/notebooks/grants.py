"""Which notebooks a session's ``jupyter`` tools may touch, checked per call on real paths.

A session is granted:

- the notebooks under its workspace folder (a folder workspace, or its own folder when
  that lies in the Jupyter tree);
- the notebooks its launch listed in ``notebooks``;
- the notebook whose ``%%agent`` cell started it.

A path comes from the agent, so it is hostile input: relative to the server's
``root_dir`` as the file browser shows it (or, for the workspace folder, as the agent sees
it, ``/workspace/...``), checked by :func:`~..workspace.paths.split_path` (no ``..``, no
NUL, no backslash), then resolved with every symlink followed; the real path must lie
inside ``root_dir``, end in ``.ipynb``, and be granted.  The tools then work on the
*resolved* path, so a link inside a granted folder cannot lead them elsewhere.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import BadRequest
from ..workspace.paths import split_path

__all__ = ["Granted", "NotebookGrants", "ToolError", "resolve_notebook_list"]

#: notebooks ``list_notebooks`` lists at most, per granted folder
LIST_LIMIT = 500
#: folder entries it looks at, at most (a huge data folder must not stall the call)
WALK_LIMIT = 50_000
_SKIP_DIRS = {".ipynb_checkpoints", "__pycache__", "node_modules", ".git"}


class ToolError(Exception):
    """A tool call that cannot be done: its text is what the agent reads (``stale: ...``,
    ``not granted: ...``, ``not found: ...``, ``invalid: ...``)."""


@dataclass(frozen=True)
class Granted:
    #: the notebook as the file browser shows it (the resolved path, relative to root_dir)
    api_path: str
    real: Path
    #: it lies under the session's workspace folder (whose checkpoints cover it)
    in_workspace: bool


@dataclass(frozen=True)
class NotebookGrants:
    #: the server's root_dir, resolved
    root: Path
    #: the workspace folder (resolved; inside root) or None
    folder: Path | None = None
    #: where the agent sees that folder (``/workspace`` in a container)
    folder_alias: str = ""
    #: notebooks granted one by one (resolved; inside root)
    files: frozenset[Path] = frozenset()

    @classmethod
    def build(
        cls,
        root_dir: str | Path,
        *,
        folder: str | Path | None,
        folder_alias: str = "",
        notebooks: Iterable[str] = (),
    ) -> NotebookGrants:
        """From the server's root and the session's record (paths relative to root)."""
        root = Path(root_dir).expanduser().resolve()
        real_folder = None
        if folder is not None:
            candidate = Path(folder).resolve()
            if candidate == root or candidate.is_relative_to(root):
                real_folder = candidate
        files = set()
        for rel in notebooks:
            if not rel:
                continue
            real = root.joinpath(*rel.split("/")).resolve()
            if real.is_relative_to(root):
                files.add(real)
        return cls(root=root, folder=real_folder, folder_alias=folder_alias, files=frozenset(files))

    def _parts(self, path: Any, field: str) -> list[str]:
        if not isinstance(path, str) or not path.strip():
            raise ToolError(f"invalid: {field} must be a notebook path such as 'analysis.ipynb'")
        alias = self.folder_alias.rstrip("/")
        if self.folder is not None and alias and (path == alias or path.startswith(alias + "/")):
            inner = path[len(alias) :].lstrip("/")
            prefix = self.folder.relative_to(self.root).as_posix()
            path = f"{prefix}/{inner}" if prefix != "." and inner else (inner or prefix)
        try:
            parts = split_path(path, field)
        except BadRequest as exc:
            raise ToolError(
                f"invalid: {exc.message}; paths are relative to the Jupyter tree, as "
                "list_notebooks shows them"
            ) from None
        return parts

    def check(self, path: Any, *, field: str = "path", must_exist: bool = True) -> Granted:
        """The granted notebook ``path`` names, or a :class:`ToolError` saying why not."""
        parts = self._parts(path, field)
        shown = "/".join(parts)
        if not shown.endswith(".ipynb"):
            raise ToolError(f"invalid: {shown!r} is not a notebook (a .ipynb file)")
        real = self.root.joinpath(*parts).resolve()
        if not real.is_relative_to(self.root):
            raise ToolError(f"not granted: {shown!r} leads out of the Jupyter tree")
        in_workspace = self.folder is not None and real.is_relative_to(self.folder)
        if not in_workspace and real not in self.files:
            raise ToolError(
                f"not granted: {shown!r} is not a notebook this session may use; ask the "
                "user to grant it (list_notebooks shows the granted ones)"
            )
        api_path = real.relative_to(self.root).as_posix()
        if must_exist and not real.is_file():
            raise ToolError(f"not found: {shown!r} does not exist (create_notebook makes one)")
        if real.exists() and not real.is_file():
            raise ToolError(f"invalid: {shown!r} is not a file")
        return Granted(api_path=api_path, real=real, in_workspace=in_workspace)

    def listing(self) -> list[str]:
        """The granted notebooks that exist, as the file browser shows them, sorted."""
        found: set[str] = set()
        for real in self.files:
            if real.is_file():
                found.add(real.relative_to(self.root).as_posix())
        if self.folder is not None:
            count = seen = 0
            for base, dirs, names in os.walk(self.folder):  # symlinks are not followed
                dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.startswith("."))
                seen += len(dirs) + len(names)
                if seen > WALK_LIMIT:
                    break
                for name in sorted(names):
                    if not name.endswith(".ipynb"):
                        continue
                    real = Path(base, name)
                    if real.is_symlink() or not real.is_file():
                        continue
                    found.add(real.relative_to(self.root).as_posix())
                    count += 1
                    if count >= LIST_LIMIT:
                        return sorted(found)
        return sorted(found)

    def describe(self) -> dict[str, Any]:
        """The grants as the agent is told them."""
        folder = None
        if self.folder is not None:
            rel = self.folder.relative_to(self.root).as_posix()
            folder = "" if rel == "." else rel
        return {
            "folder": folder,
            "notebooks": sorted(p.relative_to(self.root).as_posix() for p in self.files),
        }


def resolve_notebook_list(root_dir: str | None, value: Any) -> list[str]:
    """A launch's ``notebooks``: paths of the Jupyter tree an agent may edit; a 400 that
    says what to fix for anything else.  A listed notebook need not exist yet (the agent
    may create it), but its folder must, inside the tree."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRequest("notebooks must be a list of notebook paths", field="notebooks")
    if len(value) > 100:
        raise BadRequest("notebooks takes at most 100 paths", field="notebooks")
    if value and not root_dir:
        raise BadRequest("this server has no root_dir to grant notebooks from", field="notebooks")
    root = Path(root_dir or ".").expanduser().resolve()
    out: list[str] = []
    for item in value:
        parts = split_path(item, "notebooks")
        shown = "/".join(parts)
        if not shown.endswith(".ipynb"):
            raise BadRequest(f"notebooks: {shown!r} is not a .ipynb path", field="notebooks")
        real = root.joinpath(*parts).resolve()
        if not real.is_relative_to(root):
            raise BadRequest(
                f"notebooks: {shown!r} leads out of the Jupyter tree (a symlink)",
                field="notebooks",
            )
        if not real.parent.is_dir():
            raise BadRequest(
                f"notebooks: the folder of {shown!r} does not exist", field="notebooks"
            )
        if real.exists() and not real.is_file():
            raise BadRequest(f"notebooks: {shown!r} is not a file", field="notebooks")
        rel = real.relative_to(root).as_posix()
        if rel not in out:
            out.append(rel)
    return out
