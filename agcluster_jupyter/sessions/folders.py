"""Folder workspaces: a session that works in a folder of the user's Jupyter tree instead
of a fresh folder of its own (launch body ``workspace``, ``workspace_readonly``,
``share_workspace``).

The folder is named as the file browser shows it, relative to the server's ``root_dir``;
it must exist, be a folder, and resolve (symlinks followed) to a place inside
``root_dir``: a link out of the tree is refused like ``..``.  Two live sessions may not
work in the same folder, or one inside the other, unless the second says
``share_workspace`` (their edits would race).  A folder workspace is the user's: a purge
never deletes it, and no provider changes its ownership.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import BadRequest
from ..workspace.paths import split_path

__all__ = ["FolderWorkspace", "overlaps", "resolve_folder"]


@dataclass(frozen=True)
class FolderWorkspace:
    #: as the file browser shows it ("" is the root of the tree)
    relpath: str
    #: the real folder (symlinks resolved)
    path: Path
    readonly: bool = False
    shared: bool = False


def _flag(body: dict[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise BadRequest(f"{name} must be true or false", field=name)
    return value


def resolve_folder(root_dir: str | None, body: dict[str, Any]) -> FolderWorkspace | None:
    """The launch body's folder workspace (None: the session gets a folder of its own);
    a 400 that says what to fix for anything else."""
    value = body.get("workspace")
    readonly, shared = _flag(body, "workspace_readonly"), _flag(body, "share_workspace")
    if value is None:
        for name, given in (("workspace_readonly", readonly), ("share_workspace", shared)):
            if given:
                raise BadRequest(f"{name} needs a workspace folder", field=name)
        return None
    if not isinstance(value, str) or len(value) > 4096:
        raise BadRequest(
            "workspace must be a folder of the Jupyter tree, as the file browser shows it",
            field="workspace",
        )
    if not root_dir:
        raise BadRequest("this server has no root_dir to take folders from", field="workspace")
    parts = split_path(value, "workspace")
    root = Path(root_dir).expanduser().resolve()
    path = (root.joinpath(*parts)).resolve()
    shown = "/".join(parts)
    if path != root and not path.is_relative_to(root):
        raise BadRequest(
            f"workspace {shown!r} leads out of the Jupyter tree (a symlink); name a folder "
            "inside it",
            field="workspace",
        )
    if not path.is_dir():
        what = "is not a folder" if path.exists() else "does not exist"
        raise BadRequest(f"workspace {shown!r} {what}; name an existing folder", field="workspace")
    if not os.access(path, os.R_OK | os.X_OK):
        raise BadRequest(f"workspace {shown!r} cannot be read by this server", field="workspace")
    return FolderWorkspace(shown, path, readonly=readonly, shared=shared)


def overlaps(a: Path, b: Path) -> bool:
    """The same folder, or one inside the other."""
    return a == b or a.is_relative_to(b) or b.is_relative_to(a)
