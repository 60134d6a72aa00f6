"""agcluster-jupyter: Claude Agent SDK agents in isolated containers, driven from Jupyter."""

from __future__ import annotations

from typing import Any

from ._version import __version__

__all__ = ["__version__", "_jupyter_server_extension_points", "load_ipython_extension"]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from .app import AgClusterApp

    return [{"module": "agcluster_jupyter.app", "app": AgClusterApp}]


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext agcluster_jupyter``: register ``%%agent`` and ``%agent``."""
    from .kernel.magics import AgentMagics, await_agent_cells

    ipython.register_magics(AgentMagics(ipython))
    # in a kernel, %%agent cells run as awaits so the widget's buttons work mid-turn
    if getattr(ipython, "kernel", None) is not None:
        if await_agent_cells not in ipython.input_transformers_post:
            ipython.input_transformers_post.append(await_agent_cells)
