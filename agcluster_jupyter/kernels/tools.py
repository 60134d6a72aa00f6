"""The ``jupyter`` MCP server's kernel tools: a narrow, approved door into the user's kernel.

Each call is checked here, per call, like the notebook tools: the arguments field by
field, the notebook against the session's grants on real paths, and then the kernel: the
notebook's running kernel must be the very process the user granted to the session (a
restart needs a new grant).  ``inspect_variable`` and ``list_variables`` run only the
fixed code of ``snippets.py``, silently; ``run_cell`` runs one cell of the notebook as if
the user pressed Shift+Enter (its outputs go into the notebook), ``run_code`` the agent's
code without a cell.  Under ``kernel_access: ask`` every ``run_*`` call first waits for the
user's answer to a permission request showing the exact code; the kernel is checked again
after it.  Outputs returned to the agent are capped; a call past its timeout is
interrupted.  Every call, refused or run, is described in ``ctx.call`` for the log.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from ..events import KernelCallEvent
from ..notebooks.cells import MAX_SOURCE_CHARS, cell_ids, outputs_view
from ..notebooks.grants import NotebookGrants, ToolError
from ..notebooks.tools import NotebookTools
from .door import Execution, KernelDoor, KernelRef, NoKernel
from .snippets import SnippetError, inspect_expression, list_expression, parse_result

__all__ = ["KERNEL_TOOLS", "RUN_TOOLS", "KernelAccess", "KernelCallContext", "KernelTools"]

KernelAccess = Literal["deny", "ask", "allow"]

#: tool name -> the argument names it takes (all required)
KERNEL_TOOLS: dict[str, tuple[str, ...]] = {
    "list_variables": ("notebook",),
    "inspect_variable": ("notebook", "name"),
    "run_cell": ("notebook", "cell_id"),
    "run_code": ("notebook", "code"),
}
#: the tools that run code of the agent's choosing: approved one by one under ``ask``
RUN_TOOLS = frozenset({"run_cell", "run_code"})

#: (allowed, who answered, the user's message) for a permission request of a run_* call
Approver = Callable[[str, dict[str, Any]], Awaitable[tuple[bool, str, str]]]


@dataclass
class KernelCallContext:
    grants: NotebookGrants
    kernel_access: KernelAccess
    #: notebook path -> the kernel process granted for it (``KernelRef.grant()``)
    kernel_grants: dict[str, dict[str, Any]]
    approve: Approver
    timeout: float
    #: the run_* tools the user approved ahead for this turn (``%%agent --approve``)
    approved_ahead: frozenset[str] = frozenset()
    #: filled by every call: the session logs it
    call: KernelCallEvent | None = None


class KernelTools:
    """The kernel tools over this server's kernels and the notebook tools' reads/writes."""

    def __init__(self, door: KernelDoor, notebooks: NotebookTools) -> None:
        self.door = door
        self.notebooks = notebooks

    async def call(self, tool: str, args: Any, ctx: KernelCallContext) -> dict[str, Any]:
        if tool not in KERNEL_TOOLS:
            raise ToolError(f"invalid: no tool {tool!r}")
        if ctx.kernel_access == "deny":
            raise ToolError("not granted: this session has no access to the user's kernels")
        if not isinstance(args, dict):
            raise ToolError("invalid: the arguments must be an object")
        unknown = sorted(set(args) - set(KERNEL_TOOLS[tool]))
        if unknown:
            raise ToolError(f"invalid: {tool} takes no argument {unknown[0]!r}")
        for name in KERNEL_TOOLS[tool]:
            if not isinstance(args.get(name), str) or not args[name]:
                raise ToolError(f"invalid: {tool} needs {name} (a string)")
        granted = ctx.grants.check(args["notebook"])
        path = granted.api_path
        ref = await self._granted_kernel(path, ctx)
        call = KernelCallEvent(
            notebook=path, kernel_id=ref.kernel_id, tool=tool, code="", outcome="refused"
        )
        ctx.call = call
        if tool == "list_variables":
            return await self._snippet(ref, list_expression(), call, ctx)
        if tool == "inspect_variable":
            try:
                expression = inspect_expression(args["name"])
            except SnippetError as exc:
                raise ToolError(str(exc)) from None
            return await self._snippet(ref, expression, call, ctx)

        # run_cell, run_code: code of the agent's choosing
        if tool == "run_cell":
            code = await self._cell_source(granted, args["cell_id"])
        else:
            code = args["code"]
            if len(code) > MAX_SOURCE_CHARS or "\x00" in code:
                raise ToolError("invalid: code must be under 200,000 characters, without NUL")
        call.code = code
        if ctx.kernel_access == "allow" or tool in ctx.approved_ahead:
            call.approved_by = "kernel_access allow" if ctx.kernel_access == "allow" else "ahead"
        else:
            request = {"notebook": path, "kernel_id": ref.kernel_id, "code": code}
            if tool == "run_cell":
                request["cell_id"] = args["cell_id"]
            allowed, by, message = await ctx.approve(f"mcp__jupyter__{tool}", request)
            call.approved_by = by
            if not allowed:
                call.outcome = "denied"
                why = f": {message}" if message else ""
                raise ToolError(f"denied: the user did not allow running this code{why}")
        # the answer may have taken minutes: the kernel must still be the granted one
        ref = await self._granted_kernel(path, ctx)
        run = await self.door.execute(
            ref, code, timeout=ctx.timeout, store_history=tool == "run_cell"
        )
        call.duration_ms = run.duration_ms
        call.outcome = _outcome(run)
        reply = _run_reply(run, ctx.timeout)
        if tool == "run_cell" and run.status != "busy":
            written = await self.notebooks.set_outputs(
                granted, args["cell_id"], run.outputs, run.execution_count
            )
            reply["written_to_notebook"] = written
            if not written:
                reply["note"] = (
                    "the outputs are not in the notebook: it has unsaved changes in JupyterLab"
                )
        return reply

    async def _granted_kernel(self, path: str, ctx: KernelCallContext) -> KernelRef:
        try:
            ref = await self.door.kernel_of(path)
        except NoKernel as exc:
            raise ToolError(str(exc)) from None
        grant = ctx.kernel_grants.get(path)
        if grant is None:
            raise ToolError(
                f"not granted: the kernel of {path!r} is not granted to this session; ask "
                "the user to grant it (the Agents panel's Grant kernel access)"
            )
        if not ref.matches(grant):
            raise ToolError(
                f"not granted: the kernel of {path!r} restarted since the user granted it; "
                "ask the user to grant it again"
            )
        return ref

    async def _cell_source(self, granted: Any, cell_id: str) -> str:
        nb = await self.notebooks.content(granted)
        for cell, found in zip(nb.get("cells") or [], cell_ids(nb), strict=True):
            if found == cell_id:
                if cell.get("cell_type") != "code":
                    raise ToolError(f"invalid: cell {cell_id!r} is not a code cell")
                source = cell.get("source", "")
                return "".join(source) if isinstance(source, list) else str(source)
        raise ToolError(f"not found: no cell has id {cell_id!r}; read the notebook again")

    async def _snippet(
        self, ref: KernelRef, expression: str, call: KernelCallEvent, ctx: KernelCallContext
    ) -> dict[str, Any]:
        if ref.language and ref.language != "python":
            raise ToolError(f"invalid: the kernel is {ref.language}; these tools read Python only")
        call.approved_by = "inspection"
        run = await self.door.execute(
            ref,
            "",
            timeout=ctx.timeout,
            silent=True,
            store_history=False,
            user_expressions={"summary": expression},
        )
        call.duration_ms = run.duration_ms
        call.outcome = _outcome(run)
        if run.status == "busy":
            raise ToolError(_BUSY)
        if run.status == "timeout":
            raise ToolError(
                f"timeout: the inspection ran past {ctx.timeout:g} s and was interrupted"
            )
        try:
            return parse_result({"user_expressions": run.user_expressions}, "summary")
        except SnippetError as exc:
            call.outcome = "error"
            raise ToolError(str(exc)) from None


_BUSY = (
    "timeout: the kernel did not answer (it is busy, likely with the user's own cell); "
    "nothing ran: try again later"
)


def _outcome(run: Execution) -> str:
    return run.status if run.status in ("ok", "error", "timeout", "busy") else "error"


def _run_reply(run: Execution, timeout: float) -> dict[str, Any]:
    reply: dict[str, Any] = {
        "status": run.status,
        "execution_count": run.execution_count,
        "outputs": outputs_view(run.outputs),
        "duration_ms": run.duration_ms,
    }
    if run.status == "timeout":
        reply["note"] = f"it ran past {timeout:g} s (kernel_call_timeout) and was interrupted"
    elif run.status == "busy":
        reply["note"] = _BUSY
    return reply
