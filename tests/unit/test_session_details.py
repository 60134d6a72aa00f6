"""The workspace as a path of the Jupyter tree (``contents_path`` in session details)."""

from __future__ import annotations

from pathlib import Path

from agcluster_jupyter.sessions.session import _contents_path


def test_contents_path_inside_and_outside_the_tree(tmp_path: Path) -> None:
    root = tmp_path / "home"
    workspace = root / "agent-workspaces" / "abc"
    workspace.mkdir(parents=True)
    assert _contents_path(workspace, root) == "agent-workspaces/abc"
    assert _contents_path(tmp_path / "elsewhere", root) is None
    assert _contents_path(workspace, None) is None
    # a symlinked root still matches (both sides resolved)
    link = tmp_path / "link"
    link.symlink_to(root)
    assert _contents_path(workspace, link) == "agent-workspaces/abc"
