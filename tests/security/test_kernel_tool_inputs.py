"""The kernel tools' inputs are hostile: hypothesis throws arbitrary tool names and
arguments (hostile notebook paths, variable names that are code, unknown cell ids, huge
or NUL-laden code) at the real kernel tools over a real kernel, started by Jupyter's own
session manager for a granted notebook.

What must hold for every call: a result or a :class:`ToolError` (never another
exception); no code of the agent's runs without approval (every ``run_*`` that gets past
the checks asks first, and here every answer is no), so the kernel's state is exactly what
the user left; the inspections never ask and never change it."""

from __future__ import annotations

import asyncio
import json
import tempfile
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import nbformat
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jupyter_server.services.contents.filemanager import AsyncFileContentsManager
from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from jupyter_server.services.sessions.sessionmanager import (
    KernelName,
    ModelName,
    SessionManager,
)

from agcluster_jupyter.kernels import KERNEL_TOOLS, KernelDoor, KernelTools
from agcluster_jupyter.kernels.tools import KernelCallContext
from agcluster_jupyter.notebooks import NotebookGrants, NotebookTools, ToolError

PROPS = settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
T = TypeVar("T")

_NOTEBOOKS = st.sampled_from(
    [
        "granted/nb.ipynb",
        "granted/../private/p.ipynb",
        "private/p.ipynb",
        "/etc/passwd",
        "granted/nb.ipynb\x00",
        "",
        "granted/none.ipynb",
    ]
)
_NAMES = st.one_of(
    st.sampled_from(
        ["state", "secret", "__import__('os').system('id')", "state; state = 0", "In", ""]
    ),
    st.text(max_size=30),
)
_CODE = st.one_of(
    st.sampled_from(["state = 'changed'", "import os; os.remove('x')", "x\x00", "y" * 300_000]),
    st.text(max_size=200),
)
_VALUE = st.one_of(_NOTEBOOKS, _NAMES, _CODE, st.integers(), st.none(), st.lists(st.text()))


@st.composite
def _calls(draw: st.DrawFn) -> tuple[str, Any]:
    tool = draw(st.one_of(st.sampled_from(sorted(KERNEL_TOOLS)), st.text(max_size=12)))
    if draw(st.booleans()):
        args: Any = {
            "notebook": draw(st.one_of(_NOTEBOOKS, _VALUE)),
            "name": draw(_NAMES),
            "cell_id": draw(st.sampled_from(["c0", "c1", "nope", ""])),
            "code": draw(_CODE),
        }
        keep = KERNEL_TOOLS.get(tool, ("notebook",))
        args = {k: v for k, v in args.items() if k in keep or draw(st.booleans())}
    else:
        args = draw(_VALUE)
    return tool, args


class _Loop:
    """A loop of its own in a thread: the kernel and its clients live there."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 120) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def kernel_world() -> Iterator[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="agc-kprop-") as tmp:
        root = Path(tmp)
        (root / "granted").mkdir()
        (root / "private").mkdir()
        nb = nbformat.v4.new_notebook()
        nb.cells = [
            nbformat.v4.new_code_cell("state = 'ran by the agent'", id="c0"),
            nbformat.v4.new_markdown_cell("# notes", id="c1"),
        ]
        nbformat.write(nb, root / "granted" / "nb.ipynb")
        nbformat.write(nb, root / "private" / "p.ipynb")
        loop = _Loop()
        contents = AsyncFileContentsManager(root_dir=str(root))
        kernels = AsyncMappingKernelManager(root_dir=str(root))
        sessions = SessionManager(kernel_manager=kernels, contents_manager=contents)

        async def start() -> KernelTools:
            await sessions.create_session(
                path="granted/nb.ipynb",
                name=ModelName("nb"),
                type="notebook",
                kernel_name=KernelName("python3"),
            )
            door = KernelDoor(kernels, sessions)
            ref = await door.kernel_of("granted/nb.ipynb")
            await door.execute(ref, "state = 'the user'\nsecret = 42", timeout=60)
            return KernelTools(door, NotebookTools(contents))

        tools = loop.run(start())
        ref = loop.run(tools.door.kernel_of("granted/nb.ipynb"))
        try:
            yield {"root": root, "loop": loop, "tools": tools, "grant": ref.grant()}
        finally:

            async def stop() -> None:
                await kernels.shutdown_all()
                sessions.close()  # its sqlite cursor, in the thread that made it
                kernels.context.destroy(linger=0)  # the kernels' zmq context: ours here

            loop.run(stop())
            loop.close()


def _state(world: dict[str, Any]) -> str:
    tools: KernelTools = world["tools"]

    async def read() -> str:
        ref = await tools.door.kernel_of("granted/nb.ipynb")
        run = await tools.door.execute(
            ref, "", timeout=30, silent=True, store_history=False, user_expressions={"s": "state"}
        )
        return str(run.user_expressions["s"]["data"]["text/plain"])

    value: str = world["loop"].run(read())
    return value


@PROPS
@given(call=_calls())
def test_hostile_kernel_tool_calls_run_nothing_unapproved(
    kernel_world: dict[str, Any], call: tuple[str, Any]
) -> None:
    tool, args = call
    asked: list[dict[str, Any]] = []

    async def deny(tool_name: str, request: dict[str, Any]) -> tuple[bool, str, str]:
        asked.append({"tool": tool_name, **request})
        return False, "the test", "no"

    ctx = KernelCallContext(
        grants=NotebookGrants.build(kernel_world["root"], folder=kernel_world["root"] / "granted"),
        kernel_access="ask",
        kernel_grants={"granted/nb.ipynb": kernel_world["grant"]},
        approve=deny,
        timeout=20,
    )
    try:
        result = kernel_world["loop"].run(kernel_world["tools"].call(tool, args, ctx))
    except ToolError as exc:
        assert str(exc).split(":")[0] in (
            "invalid",
            "not granted",
            "not found",
            "no kernel",
            "denied",
            "timeout",
        ), str(exc)
    else:
        assert tool in ("list_variables", "inspect_variable"), (tool, args, result)
        json.dumps(result)  # plain JSON for the agent
    # a run that got past the checks asked, with its exact code; nothing else asked
    for request in asked:
        assert request["tool"] in ("mcp__jupyter__run_cell", "mcp__jupyter__run_code")
        assert request["notebook"] == "granted/nb.ipynb" and isinstance(request["code"], str)
    if tool in ("list_variables", "inspect_variable"):
        assert asked == []
    assert _state(kernel_world) == "'the user'"
