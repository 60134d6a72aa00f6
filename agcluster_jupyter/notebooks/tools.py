"""The ``jupyter`` MCP server's notebook tools, run by the Jupyter server for one call.

The agent's runner forwards each call over the runner channel (``runner/jupyter_tools.py``);
the session relay hands it here with the session's grants (``grants.py``), built afresh
for every call.  Everything the agent sends is hostile input: arguments are checked
field by field, paths against the grants on real paths, and edits all or nothing
(``cells.py``).  Notebooks are read and written through Jupyter's ContentsManager, as the
file browser would, or, when a page has one open with real-time collaboration, through
its shared document (``shared.py``); an edit outside the workspace folder first keeps the notebook's
previous content in the session's journal (``journal.py``), so restore and rewind undo it.

A :class:`~.grants.ToolError` is what the agent reads as the tool's (error) result; its
text starts with why: ``invalid``, ``not granted``, ``not found``, ``stale``, ``exists``.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from jupyter_core.utils import ensure_async
from tornado.web import HTTPError

from ..events import NotebookEditEvent
from .cells import (
    EditError,
    apply_edits,
    cell_ids,
    changed_under,
    new_notebook,
    notebook_view,
    plain,
    version_of,
)
from .grants import Granted, NotebookGrants, ToolError
from .journal import NotebookJournal
from .live import OpenNotebooks
from .shared import SharedNotebook, SharedNotebooks

__all__ = ["NOTEBOOK_TOOLS", "NotebookTools", "ToolContext"]

#: tool name -> the argument names it takes
NOTEBOOK_TOOLS: dict[str, tuple[str, ...]] = {
    "list_notebooks": (),
    "read_notebook": ("path",),
    "edit_notebook": ("path", "version", "edits"),
    "create_notebook": ("path",),
}
#: the notebooks last read or written, by (path, version): what an edit given an older
#: version of a shared notebook is rebased from
_READS_KEPT = 16
_REQUIRED: dict[str, tuple[str, ...]] = {
    "read_notebook": ("path",),
    "edit_notebook": ("path", "version", "edits"),
    "create_notebook": ("path",),
}


@dataclass
class ToolContext:
    """One call's session facts."""

    grants: NotebookGrants
    session_id: str
    #: the turn the call belongs to (the journal keys earlier contents by it)
    turn: int
    #: the session's name, as collaborators see it in a shared notebook
    session_name: str = ""
    journal: NotebookJournal | None = None
    #: the workspace folder is mounted read-only: its notebooks may be read only
    readonly_folder: bool = False
    #: filled by an edit or create: the session logs it
    edit: NotebookEditEvent | None = None


class NotebookTools:
    """The tools over one ContentsManager; edits of one notebook run one at a time."""

    def __init__(
        self,
        contents_manager: Any,
        open_notebooks: OpenNotebooks | None = None,
        shared: SharedNotebooks | None = None,
    ) -> None:
        self.contents = contents_manager
        #: what JupyterLab pages hold unsaved (``live.py``): never written under the user
        self.open_notebooks = open_notebooks or OpenNotebooks()
        #: the notebooks open with real-time collaboration (none without it)
        self.shared = shared
        self._reads: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}

    async def call(self, tool: str, args: Any, ctx: ToolContext) -> dict[str, Any]:
        """The tool's result (JSON data), or a :class:`ToolError` the agent reads."""
        if tool not in NOTEBOOK_TOOLS:
            raise ToolError(f"invalid: no tool {tool!r}; the tools are {', '.join(NOTEBOOK_TOOLS)}")
        if not isinstance(args, dict):
            raise ToolError("invalid: the arguments must be an object")
        unknown = sorted(set(args) - set(NOTEBOOK_TOOLS[tool]))
        if unknown:
            raise ToolError(f"invalid: {tool} takes no argument {unknown[0]!r}")
        for name in _REQUIRED.get(tool, ()):
            if args.get(name) is None:
                raise ToolError(f"invalid: {tool} needs {name}")
        if tool == "list_notebooks":
            # a walk of the folder: off the server's loop
            listed = await asyncio.to_thread(ctx.grants.listing)
            return {"notebooks": listed, "grants": ctx.grants.describe()}
        if tool == "read_notebook":
            granted = ctx.grants.check(args["path"])
            nb, _ = await self._load(granted)
            view = notebook_view(granted.api_path, nb)
            self._remember(granted.api_path, nb)
            return view
        if tool == "edit_notebook":
            return await self._edit(ctx, args)
        return await self._create(ctx, args)

    def _remember(self, api_path: str, nb: dict[str, Any], version: str | None = None) -> None:
        key = (api_path, version or version_of(nb))
        self._reads[key] = nb
        self._reads.move_to_end(key)
        while len(self._reads) > _READS_KEPT:
            self._reads.popitem(last=False)

    def _rebasable(self, api_path: str, version: str, nb: dict[str, Any], edits: Any) -> bool:
        """For a shared notebook a collaborator changed since the agent read it: do the
        edits still apply to it now (``nb``), none of the cells they name changed?"""
        then = self._reads.get((api_path, version))
        return then is not None and changed_under(edits, then, nb) is None

    async def _load(self, granted: Granted) -> tuple[dict[str, Any], SharedNotebook | None]:
        """The notebook as the user has it: its shared document when a page has it open
        with collaboration (typing included), else the file."""
        shared = await self.shared.get(granted.api_path) if self.shared is not None else None
        if shared is not None:
            return shared.content(), shared
        return await self._read(granted), None

    async def _read(self, granted: Granted) -> dict[str, Any]:
        try:
            model = await ensure_async(
                self.contents.get(granted.api_path, content=True, type="notebook")
            )
        except HTTPError as exc:
            if exc.status_code == 404:
                raise ToolError(f"not found: {granted.api_path!r} does not exist") from None
            raise ToolError(
                f"invalid: {granted.api_path!r} cannot be read as a notebook "
                f"({exc.log_message or exc.reason})"
            ) from None
        return plain(model["content"])

    @staticmethod
    def _still_there(granted: Granted) -> None:
        # the path is resolved again just before the write: a link planted since the
        # check must not lead the write elsewhere
        if granted.real.is_symlink() or granted.real.resolve() != granted.real:
            raise ToolError(f"not granted: {granted.api_path!r} changed into a link; read it again")

    async def _save(self, granted: Granted, nb: dict[str, Any]) -> str:
        self._still_there(granted)
        model = {"type": "notebook", "format": "json", "content": nb}
        try:
            await ensure_async(self.contents.save(model, granted.api_path))
        except HTTPError as exc:
            raise ToolError(
                f"invalid: {granted.api_path!r} could not be saved "
                f"({exc.log_message or exc.reason})"
            ) from None
        return version_of(await self._read(granted))

    def _writable(self, ctx: ToolContext, granted: Granted) -> None:
        if granted.in_workspace and ctx.readonly_folder:
            raise ToolError(
                f"not granted: {granted.api_path!r} is in a read-only workspace; it may be "
                "read, not changed"
            )

    def _lock(self, api_path: str) -> asyncio.Lock:
        return self._locks.setdefault(api_path, asyncio.Lock())

    async def _keep_before(
        self, ctx: ToolContext, granted: Granted, before: dict[str, Any] | None
    ) -> None:
        if granted.in_workspace or ctx.journal is None:
            return  # the workspace's own checkpoint holds it
        await asyncio.to_thread(ctx.journal.record, ctx.turn, granted.api_path, before)

    async def _edit(self, ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
        granted = ctx.grants.check(args["path"])
        self._writable(ctx, granted)
        version = args["version"]
        if not isinstance(version, str):
            raise ToolError("invalid: version must be the version string read_notebook returned")
        async with self._lock(granted.api_path):
            nb, shared = await self._load(granted)
            current = version_of(nb)
            # a shared notebook is typed in while the agent works: its edit still applies
            # when the cells it names are as the agent read them
            if version != current and not (
                shared is not None and self._rebasable(granted.api_path, version, nb, args["edits"])
            ):
                raise ToolError(
                    f"stale: {granted.api_path!r} changed since version {version!r} was read "
                    f"(it is now {current!r}); read it again and redo the edit"
                )
            # a shared document merges the edit with the user's typing; a file would not
            if shared is None and self.open_notebooks.dirty(granted.api_path):
                raise ToolError(
                    f"stale: {granted.api_path!r} is open in JupyterLab with unsaved changes; "
                    "the user's typing comes first: ask them to save it, then read it again"
                )
            marker = {"session": ctx.session_id, "turn": ctx.turn}
            try:
                result = apply_edits(nb, args["edits"], marker=marker)
            except EditError as exc:
                raise ToolError(f"invalid: {exc}; nothing was changed") from None
            await self._keep_before(ctx, granted, nb)
            if shared is None:
                new_version = await self._save(granted, result.notebook)
            else:
                new_version = await self._save_shared(ctx, granted, shared, nb, result.notebook)
            self._remember(granted.api_path, result.notebook, new_version)
        ctx.edit = NotebookEditEvent(
            path=granted.api_path,
            version=new_version,
            inserted=result.inserted,
            replaced=result.replaced,
            deleted=result.deleted,
        )
        return {
            "path": granted.api_path,
            "version": new_version,
            "inserted": result.inserted,
            "replaced": result.replaced,
            "deleted": result.deleted,
        }

    async def _save_shared(
        self,
        ctx: ToolContext,
        granted: Granted,
        shared: SharedNotebook,
        before: dict[str, Any],
        after: dict[str, Any],
    ) -> str:
        self._still_there(granted)
        if shared.content() != before:
            # the journal's await let the user type: the edit was checked against before
            raise ToolError(
                f"stale: {granted.api_path!r} changed while the edit was applied; read it "
                "again and redo the edit"
            )
        shared.apply(after)
        if self.shared is not None and ctx.session_name:
            self.shared.present(shared, ctx.session_id, ctx.session_name)
        await shared.save()
        return version_of(shared.content())

    # -- for the kernel tools ---------------------------------------------------------------

    async def content(self, granted: Granted) -> dict[str, Any]:
        """The notebook as the user has it (its shared document, or the file)."""
        nb, _ = await self._load(granted)
        return nb

    async def set_outputs(
        self,
        granted: Granted,
        cell_id: str,
        outputs: list[dict[str, Any]],
        execution_count: int | None,
    ) -> bool:
        """A cell's outputs after it ran, into the notebook (False: not written, the open
        page has unsaved changes that a write of the file would overwrite)."""
        async with self._lock(granted.api_path):
            nb, shared = await self._load(granted)
            if shared is None and self.open_notebooks.dirty(granted.api_path):
                return False
            for cell, found in zip(nb.get("cells") or [], cell_ids(nb), strict=True):
                if found == cell_id and cell.get("cell_type") == "code":
                    cell["outputs"] = outputs
                    cell["execution_count"] = execution_count
                    break
            else:
                return False  # the cell went while it ran
            if shared is not None:
                shared.apply(nb)
                await shared.save()
            else:
                await self._save(granted, nb)
        return True

    # -- undo: the journal's contents written back (restore, rewind and their undo) -----

    async def current(self, api_path: str) -> dict[str, Any] | None:
        """The notebook's content now (None: it does not exist)."""
        shared = await self.shared.get(api_path) if self.shared is not None else None
        if shared is not None:
            return shared.content()
        try:
            model = await ensure_async(self.contents.get(api_path, content=True, type="notebook"))
        except HTTPError as exc:
            if exc.status_code == 404:
                return None
            raise
        return plain(model["content"])

    async def put_back(self, contents: dict[str, dict[str, Any] | None]) -> list[str]:
        """Write each notebook as given (None: delete it); the paths that changed."""
        changed = []
        for api_path, content in sorted(contents.items()):
            async with self._lock(api_path):
                now = await self.current(api_path)
                if now == content:
                    continue
                shared = await self.shared.get(api_path) if self.shared is not None else None
                if content is None:
                    await ensure_async(self.contents.delete(api_path))
                elif shared is not None:
                    # the open pages show it at once, with no out-of-band overwrite
                    shared.apply(content)
                    await shared.save()
                else:
                    model = {"type": "notebook", "format": "json", "content": content}
                    await ensure_async(self.contents.save(model, api_path))
                changed.append(api_path)
        return changed

    async def _create(self, ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
        granted = ctx.grants.check(args["path"], must_exist=False)
        self._writable(ctx, granted)
        async with self._lock(granted.api_path):
            if granted.real.exists():
                raise ToolError(
                    f"exists: {granted.api_path!r} exists already; read_notebook it, or "
                    "pick another name"
                )
            if not granted.real.parent.is_dir():
                raise ToolError(f"not found: the folder of {granted.api_path!r} does not exist")
            await self._keep_before(ctx, granted, None)
            version = await self._save(granted, new_notebook())
        ctx.edit = NotebookEditEvent(path=granted.api_path, version=version, created=True)
        return {"path": granted.api_path, "version": version, "cells": []}
