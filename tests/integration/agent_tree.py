"""The Jupyter tree of the jupyter-tools tests, where the agent user can reach it (pytest's
tmp_path is 0700, and the local provider runs the CLI as ``nobody`` when we are root)."""

from __future__ import annotations

import pwd
from pathlib import Path

__all__ = ["AGENT", "agent_reachable_root"]

#: the user the local provider runs the agent as (tests run as root)
AGENT = pwd.getpwnam("nobody")


def agent_reachable_root(agent_dirs: dict[str, Path]) -> Path:
    """pytest-jupyter's tree, moved where the agent user can reach it.  A module uses it
    as its ``jp_root_dir``: ``jp_root_dir = pytest.fixture(agent_reachable_root,
    name="jp_root_dir")``."""
    root = agent_dirs["base"] / "tree"
    root.mkdir()
    root.chmod(0o755)
    return root
