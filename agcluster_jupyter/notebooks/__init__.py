"""The user's notebooks, as the ``jupyter`` MCP tools reach them through this server.

``grants.py`` says which notebooks a session may touch (real paths, per call);
``cells.py`` is the notebook as the agent reads it and its edits, as pure functions;
``tools.py`` runs a tool call against Jupyter's ContentsManager; ``journal.py`` keeps the
earlier content of notebooks outside the workspace, so restore and rewind undo edits.
"""

from __future__ import annotations

from .grants import NotebookGrants, ToolError
from .tools import NOTEBOOK_TOOLS, NotebookTools

__all__ = ["NOTEBOOK_TOOLS", "NotebookGrants", "NotebookTools", "ToolError"]
