"""The ``jupyter`` MCP server as the agent sees it, and the broker that forwards its calls.

The tools run in the Jupyter server, not here: the runner holds no notebook and no path
of the user's tree.  A call becomes a ``tool_call`` line on the runner's ``/events`` stream
(``{"rseq": n, "tool_call": {call_id, tool, args}}``, see ``protocol.py``) and waits for
the server's ``POST /tool-calls/{call_id}`` with ``{result}`` or ``{error}``, on the same
channel and with the same control token as every other request to the runner.  Nothing
the agent can reach in its container opens a way to the server: there is no port, only
this process's answer.

A call the server does not answer within :data:`TOOL_CALL_TIMEOUT` (a server restart
between the call and its answer) is a tool error the agent can read, and so is an
interrupt or shutdown while it waits.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Callable
from typing import Any

from ..errors import BadRequest, NotFound

__all__ = [
    "JUPYTER_SERVER",
    "JUPYTER_TOOLS",
    "KERNEL_TOOLS",
    "READ_ONLY_TOOLS",
    "SERVER_APPROVED_TOOLS",
    "TOOL_CALL_TIMEOUT",
    "ToolBroker",
    "jupyter_mcp_server",
    "tool_names",
]

#: the MCP server's name: the agent sees ``mcp__jupyter__<tool>``
JUPYTER_SERVER = "jupyter"
#: seconds a call waits for the server's answer
TOOL_CALL_TIMEOUT = 300.0
#: the largest tool result the runner passes on (the server caps its own well below)
MAX_RESULT_CHARS = 400_000

_PATH = {
    "type": "string",
    "description": "the notebook's path relative to the Jupyter tree, as list_notebooks "
    "shows it (e.g. 'project/analysis.ipynb')",
}

#: tool name -> (description, JSON schema of its input)
JUPYTER_TOOLS: dict[str, tuple[str, dict[str, Any]]] = {
    "list_notebooks": (
        "List the user's Jupyter notebooks this session may read and edit (its grants): "
        "those in its workspace folder, those the user granted, and the notebook it was "
        "started from. Paths are relative to the Jupyter tree.",
        {"type": "object", "properties": {}, "additionalProperties": False},
    ),
    "read_notebook": (
        "Read one of the user's notebooks: every cell with its id, type, source and text "
        "outputs (long ones truncated), and the notebook's version. Pass that version to "
        "edit_notebook.",
        {
            "type": "object",
            "properties": {"path": _PATH},
            "required": ["path"],
            "additionalProperties": False,
        },
    ),
    "edit_notebook": (
        "Edit one of the user's notebooks, live: insert, replace or delete cells by id. "
        "The edits apply in order and all together, or not at all. `version` is the one "
        "read_notebook returned; if the notebook changed since (the user typed, or saved), "
        "the edit is refused as stale: read it again and redo it. insert: {op: 'insert', "
        "source, cell_type?: 'code'|'markdown'|'raw' (default code), after_cell_id?: the "
        "cell to insert after ('' for the top; omitted: at the end)}. replace: {op: "
        "'replace', cell_id, source, cell_type?}. delete: {op: 'delete', cell_id}. The "
        "result has the new version and the ids of inserted cells.",
        {
            "type": "object",
            "properties": {
                "path": _PATH,
                "version": {"type": "string", "description": "from read_notebook"},
                "edits": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "properties": {
                            "op": {"type": "string", "enum": ["insert", "replace", "delete"]},
                            "cell_id": {"type": "string"},
                            "after_cell_id": {"type": "string"},
                            "cell_type": {"type": "string", "enum": ["code", "markdown", "raw"]},
                            "source": {"type": "string"},
                        },
                        "required": ["op"],
                    },
                },
            },
            "required": ["path", "version", "edits"],
            "additionalProperties": False,
        },
    ),
    "create_notebook": (
        "Create a new, empty notebook (Python 3) where this session may edit: in its "
        "workspace folder, or at a path the user granted. Then fill it with edit_notebook.",
        {
            "type": "object",
            "properties": {"path": _PATH},
            "required": ["path"],
            "additionalProperties": False,
        },
    ),
}
_NOTEBOOK = {
    "type": "string",
    "description": "the notebook whose kernel to use: its path relative to the Jupyter tree",
}

#: the kernel tools (offered when the session's kernel_access is not deny)
KERNEL_TOOLS: dict[str, tuple[str, dict[str, Any]]] = {
    "list_variables": (
        "List the variables in the user's running kernel of a notebook: names, types and "
        "sizes (capped). Look here before asking the user to paste data.",
        {
            "type": "object",
            "properties": {"notebook": _NOTEBOOK},
            "required": ["notebook"],
            "additionalProperties": False,
        },
    ),
    "inspect_variable": (
        "A bounded summary of one variable in the user's kernel of a notebook: its type; "
        "shape, dtypes and the first rows of a DataFrame or array; a capped repr. Runs no "
        "code of yours and asks no one.",
        {
            "type": "object",
            "properties": {
                "notebook": _NOTEBOOK,
                "name": {"type": "string", "description": "the variable's name"},
            },
            "required": ["notebook", "name"],
            "additionalProperties": False,
        },
    ),
    "run_cell": (
        "Run one cell of the notebook in the user's kernel, as if the user pressed "
        "Shift+Enter: its outputs go into the notebook and come back to you (text capped). "
        "The user may be asked to approve it first; a denial is an error you can read.",
        {
            "type": "object",
            "properties": {
                "notebook": _NOTEBOOK,
                "cell_id": {"type": "string", "description": "the cell's id (read_notebook)"},
            },
            "required": ["notebook", "cell_id"],
            "additionalProperties": False,
        },
    ),
    "run_code": (
        "Run code in the user's kernel of a notebook without adding a cell (for a quick "
        "look where a cell would be noise). The user may be asked to approve the exact "
        "code first. Run only what is needed: it runs in the user's own session.",
        {
            "type": "object",
            "properties": {"notebook": _NOTEBOOK, "code": {"type": "string"}},
            "required": ["notebook", "code"],
            "additionalProperties": False,
        },
    ),
}
#: the tools that change nothing: never a permission prompt
READ_ONLY_TOOLS = frozenset({"list_notebooks", "read_notebook"})
#: the tools the Jupyter server itself asks the user about (under kernel_access ask): the
#: runner lets them through in every mode, so the user is never asked twice
SERVER_APPROVED_TOOLS = frozenset(KERNEL_TOOLS)


def _offered(kernel: bool) -> dict[str, tuple[str, dict[str, Any]]]:
    return {**JUPYTER_TOOLS, **(KERNEL_TOOLS if kernel else {})}


def tool_names(prefix: bool = True, *, kernel: bool = False) -> list[str]:
    """The tools as the CLI names them (``mcp__jupyter__<tool>``), or bare."""
    return [f"mcp__{JUPYTER_SERVER}__{n}" if prefix else n for n in _offered(kernel)]


def _text_result(text: str, *, error: bool) -> dict[str, Any]:
    if len(text) > MAX_RESULT_CHARS:
        text = text[:MAX_RESULT_CHARS] + "\n… [result truncated]"
    return {"content": [{"type": "text", "text": text}], "is_error": error}


class ToolBroker:
    """The calls waiting for the server: emitted as ``tool_call`` lines, answered by id."""

    def __init__(self, emit_line: Callable[[dict[str, Any]], int]) -> None:
        self._emit_line = emit_line
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.timeout = TOOL_CALL_TIMEOUT

    @property
    def pending(self) -> list[str]:
        return sorted(self._waiting)

    async def call(self, tool: str, args: dict[str, Any]) -> dict[str, Any]:
        """Forward one call; the MCP result (``content``, ``is_error``) it comes back as."""
        call_id = f"call_{secrets.token_hex(8)}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[call_id] = future
        self._emit_line({"tool_call": {"call_id": call_id, "tool": tool, "args": args}})
        try:
            answer = await asyncio.wait_for(future, self.timeout)
        except asyncio.TimeoutError:
            return _text_result(
                f"error: the Jupyter server did not answer {tool} within "
                f"{self.timeout:.0f} s; try again",
                error=True,
            )
        finally:
            self._waiting.pop(call_id, None)
        if "error" in answer:
            return _text_result(str(answer["error"]), error=True)
        return _text_result(json.dumps(answer.get("result"), ensure_ascii=False), error=False)

    def resolve(self, call_id: str, body: Any) -> None:
        """The server's answer: ``{result: ...}`` or ``{error: "text"}``.  NotFound /
        BadRequest."""
        if not isinstance(body, dict) or ("result" in body) == ("error" in body):
            raise BadRequest('an answer is {result: ...} or {error: "..."}', field="result")
        if "error" in body and not isinstance(body["error"], str):
            raise BadRequest("error must be a string", field="error")
        future = self._waiting.get(call_id)
        if future is None or future.done():
            raise NotFound(f"no tool call {call_id!r} is waiting")
        future.set_result(body)

    def cancel_all(self, why: str) -> None:
        for future in list(self._waiting.values()):
            if not future.done():
                future.set_result({"error": f"error: {why}"})


def jupyter_mcp_server(broker: ToolBroker, *, kernel: bool = False) -> Any:
    """The in-process SDK MCP server (``mcp_servers={"jupyter": ...}``) whose every tool
    forwards to the server through ``broker``.  Imported here, not at module load: the
    SDK's MCP support is only paid for by sessions that offer these tools."""
    from claude_agent_sdk import create_sdk_mcp_server, tool

    def forwarder(name: str) -> Any:
        async def handler(args: dict[str, Any]) -> dict[str, Any]:
            return await broker.call(name, args)

        return handler

    tools = [
        tool(name, description, schema)(forwarder(name))
        for name, (description, schema) in _offered(kernel).items()
    ]
    return create_sdk_mcp_server(name=JUPYTER_SERVER, version="1.0.0", tools=tools)
