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

from ..kernels.door import NoKernel
from ..kernels.tools import KERNEL_TOOLS, RUN_TOOLS, KernelCallContext, KernelTools
from ..notebooks.grants import NotebookGrants, ToolError
from ..notebooks.live import EditFeed
from ..notebooks.tools import NotebookTools, ToolContext
from .session import Session

__all__ = ["NotebookAccess"]


class NotebookAccess:
    """The server's side of the ``jupyter`` MCP server, for every session."""

    def __init__(
        self,
        tools: NotebookTools,
        root_dir: Path,
        kernels: KernelTools | None = None,
        *,
        kernel_call_timeout: float = 120.0,
    ) -> None:
        self.tools = tools
        self.root_dir = root_dir
        #: the kernel tools (None: not offered, whatever a session's kernel_access says)
        self.kernels = kernels
        self.kernel_call_timeout = kernel_call_timeout
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

    async def grant_kernels(self, session: Session, paths: list[str]) -> dict[str, str]:
        """The user grants the session the kernels running now for these notebooks (at
        launch, or again after a restart): notebook -> kernel id of those running."""
        if self.kernels is None or session.record.config.kernel_access == "deny":
            return {}
        granted = {}
        for path in paths:
            try:
                ref = await self.kernels.door.kernel_of(path)
            except NoKernel:
                continue
            session.record.kernel_grants[path] = ref.grant()
            granted[path] = ref.kernel_id
        if granted:
            session.save()
        return granted

    async def grant_kernels_at_launch(self, session: Session) -> list[str]:
        """At launch, the user grants the kernels running for the notebooks the session is
        granted: its %%agent notebook, the launch's ``notebooks``, and those in its
        folder workspace.  The notebooks whose kernel was granted."""
        if self.kernels is None or session.record.config.kernel_access == "deny":
            return []
        grants = await asyncio.to_thread(self.grants, session)
        wanted = [session.record.notebook] if session.record.notebook else []
        wanted += session.record.notebooks
        if session.record.folder is not None:  # a folder workspace: its open notebooks
            for path in await self.kernels.door.notebooks_running():
                try:
                    if grants.check(path).in_workspace:
                        wanted.append(path)
                except ToolError:
                    continue
        return sorted(await self.grant_kernels(session, sorted(set(wanted))))

    async def _kernel_call(self, session: Session, tool: str, args: Any) -> dict[str, Any]:
        assert self.kernels is not None
        config = session.record.config
        if config.permission_mode == "plan" and tool in RUN_TOOLS:
            return {"error": "not granted: in plan mode nothing runs in the user's kernel"}
        ctx = KernelCallContext(
            grants=await asyncio.to_thread(self.grants, session),
            kernel_access=config.kernel_access,
            kernel_grants=dict(session.record.kernel_grants),
            approve=session.ask_permission,
            timeout=self.kernel_call_timeout,
        )
        try:
            result = await self.kernels.call(tool, args, ctx)
        except ToolError as exc:
            return {"error": str(exc)}
        finally:
            if ctx.call is not None:  # every call that reached a kernel, refused or run
                session.log.append(ctx.call)
        if ctx.call is not None and result.get("written_to_notebook"):
            # the open page shows the outputs (it reloads the file; a room has them)
            self.feed.publish(ctx.call.notebook, "", session.id)
        return {"result": result}

    async def __call__(self, session: Session, tool: str, args: Any) -> dict[str, Any]:
        if tool in KERNEL_TOOLS:
            if self.kernels is None or session.record.config.kernel_access == "deny":
                return {"error": "not granted: this session has no access to the user's kernels"}
            return await self._kernel_call(session, tool, args)
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
