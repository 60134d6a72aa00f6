"""Notebook widgets (ipywidgets 8) for agent sessions, all fed from the one event stream.

``SessionView`` (``state.py``) is the state folded from events; ``AgentWidget`` renders it
(chat, tool timeline, tasks, workspace, Approve/Deny, Interrupt, tokens and cost);
``WorkspaceBrowser`` is the files tab on its own.
"""

from __future__ import annotations

from .agent import AgentWidget
from .browser import WorkspaceBrowser, flatten_tree, free_name
from .state import (
    ChatEntry,
    PendingPermission,
    SessionView,
    ToolCall,
    summarize_input,
    workspace_path,
)

__all__ = [
    "AgentWidget",
    "ChatEntry",
    "PendingPermission",
    "SessionView",
    "ToolCall",
    "WorkspaceBrowser",
    "flatten_tree",
    "free_name",
    "summarize_input",
    "workspace_path",
]
