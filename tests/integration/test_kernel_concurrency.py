"""The kernel door next to the user's own use of the kernel: a page's websocket running
cells, and other clients of this server process (an extension's ``manager.client()``).

A kernel runs one request at a time, so nothing here is about parallel execution; it is
about every client getting *its own* replies and outputs, complete, whoever asked first."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import nbformat

from agcluster_jupyter.kernels.door import KernelDoor


async def _door(serverapp: Any, root: Any, name: str) -> tuple[KernelDoor, str]:
    nb = nbformat.v4.new_notebook()
    nbformat.write(nb, root / name)
    model = await serverapp.session_manager.create_session(
        path=name, name=name, type="notebook", kernel_name="python3"
    )
    door = KernelDoor(serverapp.kernel_manager, serverapp.session_manager)
    ref = await door.kernel_of(name)
    warm = await door.execute(ref, "page_runs = 0", timeout=60)
    assert warm.status == "ok", warm.outputs
    return door, str(model["kernel"]["id"])


class PageChannel:
    """The kernel protocol as JupyterLab's page speaks it over the server's websocket."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.session = uuid.uuid4().hex

    def execute(self, code: str) -> str:
        msg_id = uuid.uuid4().hex
        header = {
            "msg_id": msg_id,
            "msg_type": "execute_request",
            "session": self.session,
            "username": "page",
            "date": "2026-12-06T00:00:00Z",
            "version": "5.3",
        }
        content = {"code": code, "silent": False, "store_history": True, "allow_stdin": False}
        message = {
            "header": header,
            "parent_header": {},
            "metadata": {},
            "content": content,
            "channel": "shell",
            "buffers": [],
        }
        self.ws.write_message(json.dumps(message))
        return msg_id

    async def outcome(self, msg_id: str, timeout: float = 60) -> tuple[str, str]:
        """(the execute_reply's status, the stream text) once the kernel went idle."""
        text, status, idle = "", "", False
        deadline = time.monotonic() + timeout
        while not (idle and status):
            raw = await asyncio.wait_for(self.ws.read_message(), deadline - time.monotonic())
            assert raw is not None, "the page's websocket closed"
            msg = json.loads(raw)
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = msg["msg_type"]
            if kind == "stream":
                text += msg["content"]["text"]
            elif kind == "execute_reply":
                status = msg["content"]["status"]
            elif kind == "status" and msg["content"]["execution_state"] == "idle":
                idle = True
        return status, text


async def test_an_agent_call_while_the_page_runs_a_cell_and_the_other_way_round(
    jp_serverapp: Any, jp_root_dir: Any, jp_ws_fetch: Any
) -> None:
    door, kernel_id = await _door(jp_serverapp, jp_root_dir, "busy.ipynb")
    ws = await jp_ws_fetch("api", "kernels", kernel_id, "channels")
    page = PageChannel(ws)
    try:
        # the user's cell is running when the agent's call arrives: the call waits for
        # the kernel, then runs; both see their own results, complete
        first = page.execute(
            "import time; time.sleep(1.5); page_runs += 1; print('page', page_runs)"
        )
        await asyncio.sleep(0.3)
        ref = await door.kernel_of("busy.ipynb")
        agent = await door.execute(ref, "print('agent sees', page_runs)", timeout=30)
        assert agent.status == "ok", agent.outputs
        assert agent.outputs == [
            {"output_type": "stream", "name": "stdout", "text": "agent sees 1\n"}
        ]
        assert await page.outcome(first) == ("ok", "page 1\n")

        # the agent's call is running when the user presses Shift+Enter
        call = asyncio.ensure_future(
            door.execute(ref, "import time; time.sleep(1.5); print('agent done')", timeout=30)
        )
        await asyncio.sleep(0.3)
        second = page.execute("page_runs += 1; print('page', page_runs)")
        agent = await call
        assert agent.status == "ok"
        assert agent.outputs[0]["text"] == "agent done\n"
        assert await page.outcome(second) == ("ok", "page 2\n")
    finally:
        ws.close()


async def test_another_client_of_this_process_does_not_take_the_doors_replies(
    jp_serverapp: Any, jp_root_dir: Any
) -> None:
    """An extension in this server with its own ``manager.client()`` running requests at
    the same time: the door's replies still come to the door (a client shares the kernel
    manager's session, and with it its shell identity, unless it is given its own)."""
    door, kernel_id = await _door(jp_serverapp, jp_root_dir, "shared.ipynb")
    manager = jp_serverapp.kernel_manager.get_kernel(kernel_id)
    same_session = manager.client()  # what most extensions write
    same_session.start_channels()
    try:
        await asyncio.wait_for(same_session.wait_for_ready(), 30)
        ref = await door.kernel_of("shared.ipynb")
        for round_ in range(3):
            theirs = same_session.execute(f"import time; time.sleep(0.2); ext = {round_}")
            ours = await door.execute(ref, f"print('door', {round_})", timeout=20)
            assert ours.status == "ok", (round_, ours)
            assert ours.outputs[0]["text"] == f"door {round_}\n"
            reply = await asyncio.wait_for(_reply(same_session, theirs), 20)
            assert reply["content"]["status"] == "ok"
    finally:
        same_session.stop_channels()


async def _reply(client: Any, msg_id: str) -> dict[str, Any]:
    while True:
        msg: dict[str, Any] = await client.get_shell_msg()
        if msg["parent_header"].get("msg_id") == msg_id:
            return msg
