"""agcluster-jupyter: Claude Agent SDK agents in isolated containers, driven from Jupyter."""

from __future__ import annotations

from typing import Any

from ._version import __version__

__all__ = ["__version__", "_jupyter_server_extension_points"]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from .app import AgClusterApp

    return [{"module": "agcluster_jupyter.app", "app": AgClusterApp}]
