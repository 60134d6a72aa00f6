"""A session's ``jupyter`` tool calls, answered by this server: grants, journal, events.

For each call the grants are built afresh from the session's record (its workspace
folder, the launch's ``notebooks``, the notebook of its ``%%agent`` cell) and this
server's ``root_dir``, so a grant is checked against the tree as it is at that moment.
An edit is logged as a ``notebook_edit`` event (an open notebook in the panel reloads
from it); one outside the workspace keeps the notebook's earlier content in the
session's journal first (``notebooks/journal.py``), which restore and rewind use.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from ..notebooks.grants import NotebookGrants, ToolError
from ..notebooks.live import EditFeed
from ..notebooks.tools import NotebookTools, ToolContext
from .session import Session

__all__ = ["NotebookAccess"]


class NotebookAccess:
    """The server's side of the ``jupyter`` MCP server, for every session."""

    def __init__(self, tools: NotebookTools, root_dir: Path) -> None:
        self.tools = tools
        self.root_dir = root_dir
        #: every edit, for the pages that reload open notebooks (``notebooks/live.py``)
        self.feed = EditFeed()

    def grants(self, session: Session) -> NotebookGrants:
        rec = session.record
        folder = None if session.remote else Path(rec.workspace)
        # where the agent sees its workspace: /workspace in a container, else the folder
        alias = session.provider.workspace_mount or rec.workspace
        granted = list(rec.notebooks)
        if rec.notebook:
            granted.append(rec.notebook)
        return NotebookGrants.build(
            self.root_dir, folder=folder, folder_alias=alias, notebooks=granted
        )

    async def revert(self, session: Session, turn: int, tag: dict[str, Any]) -> list[str]:
        """A restore or rewind to before ``turn`` (the history's undo record ``tag``): the
        notebooks outside the workspace the agent edited since, as they were; what they
        held now is kept for the undo.  The notebooks that changed."""
        journal = session.notebook_journal
        targets = await asyncio.to_thread(journal.targets, turn)
        if not targets:
            return []
        replaced = {path: await self.tools.current(path) for path in targets}
        await asyncio.to_thread(journal.push_undo, tag, replaced)
        return self._published(session, await self.tools.put_back(targets))

    async def undo(self, session: Session, tag: dict[str, Any]) -> list[str]:
        """The undo of the restore tagged ``tag``: the notebooks it replaced, back."""
        replaced = await asyncio.to_thread(session.notebook_journal.pop_undo, tag)
        return self._published(session, await self.tools.put_back(replaced) if replaced else [])

    def left(self, session: Session) -> None:
        """The session stopped: it leaves the shared notebooks it was present in."""
        if self.tools.shared is not None:
            self.tools.shared.leave(session.id)

    def _published(self, session: Session, paths: list[str]) -> list[str]:
        for path in paths:  # an open notebook shows what the restore put back
            self.feed.publish(path, "", session.id)
        return paths

    async def __call__(self, session: Session, tool: str, args: Any) -> dict[str, Any]:
        ctx = ToolContext(
            grants=await asyncio.to_thread(self.grants, session),
            session_id=session.id,
            session_name=session.record.name or f"agent {session.id[:8]}",
            turn=session.record.turns + 1,  # the running turn (turns counts ended ones)
            journal=session.notebook_journal,
            readonly_folder=session.record.workspace_readonly,
        )
        try:
            result = await self.tools.call(tool, args, ctx)
        except ToolError as exc:
            return {"error": str(exc)}
        if ctx.edit is not None:
            self.feed.publish(ctx.edit.path, ctx.edit.version, session.id)
            session.log.append(ctx.edit)
        return {"result": result}
