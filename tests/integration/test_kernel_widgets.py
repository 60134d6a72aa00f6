"""The widget's buttons work while a ``%%agent`` cell runs, in a real ipykernel.

The test plays the front end over the kernel protocol: it runs a ``%%agent --mode
default`` cell, waits on IOPub for the widget's Approve button (a ``comm_open`` of a Button
model), and clicks it with the ``comm_msg`` JupyterLab would send, while the cell is still
executing.  The turn can only finish if the kernel handled that click mid-cell.
"""

from __future__ import annotations

import os
import queue
import time
from collections.abc import Iterator
from typing import Any

import pytest
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager

from agcluster_jupyter.testing.jupyter import JupyterServerProcess
from agcluster_jupyter.testing.server import ScriptedModelServer

from ..support import TEST_KEY, bash_scenario, serving

pytestmark = pytest.mark.cli


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[JupyterServerProcess, ScriptedModelServer]]:
    with ScriptedModelServer(api_key=TEST_KEY) as model:
        with serving(JupyterServerProcess(model.url, TEST_KEY)) as proc:
            yield proc, model


@pytest.fixture
def kernel(
    server: tuple[JupyterServerProcess, ScriptedModelServer], tmp_path: Any
) -> Iterator[BlockingKernelClient]:
    proc, _model = server
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "JUPYTER"))}
    env.update(JUPYTER_SERVER_URL=f"http://127.0.0.1:{proc.port}/", JUPYTER_TOKEN=proc.token)
    manager = KernelManager(kernel_name="python3")
    manager.start_kernel(env=env, cwd=str(tmp_path))
    client = manager.client()
    client.start_channels()
    client.wait_for_ready(timeout=60)
    yield client
    client.stop_channels()
    manager.shutdown_kernel(now=True)


def _button_models(msg: dict[str, Any], found: dict[str, str]) -> None:
    """Remember ``description → comm id`` of every Button the kernel opens or updates."""
    content = msg["content"]
    if msg["msg_type"] == "comm_open":
        state = content.get("data", {}).get("state", {})
        if state.get("_model_name") == "ButtonModel":
            found[state.get("description", "")] = content["comm_id"]


def _click(client: BlockingKernelClient, comm_id: str) -> None:
    # what @jupyter-widgets/base sends when a Button view is clicked
    content = {"comm_id": comm_id, "data": {"method": "custom", "content": {"event": "click"}}}
    client.shell_channel.send(client.session.msg("comm_msg", content))


def test_approve_clicked_mid_cell_lets_the_turn_finish(
    server: tuple[JupyterServerProcess, ScriptedModelServer], kernel: BlockingKernelClient
) -> None:
    proc, model = server
    model.add_scenarios([bash_scenario("make marker", "echo clicked > marker.txt")])
    kernel.execute("%load_ext agcluster_jupyter", reply=True, timeout=60)

    msg_id = kernel.execute("%%agent --mode default --out r\nmake marker please")
    buttons: dict[str, str] = {}
    clicked_at = None
    finished = False
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not finished:
        try:
            msg = kernel.get_iopub_msg(timeout=1)
        except queue.Empty:
            continue
        _button_models(msg, buttons)
        if clicked_at is None and "Approve" in buttons:
            _click(kernel, buttons["Approve"])
            clicked_at = time.monotonic()
        parent = msg.get("parent_header", {}).get("msg_id")
        if msg["msg_type"] == "error" and parent == msg_id:
            pytest.fail("\n".join(msg["content"]["traceback"]))
        if (
            msg["msg_type"] == "status"
            and parent == msg_id
            and msg["content"]["execution_state"] == "idle"
        ):
            finished = True
    assert clicked_at is not None, f"no Approve button appeared (buttons: {sorted(buttons)})"
    assert finished, "the cell never finished: the click was not handled mid-cell"
    assert "Interrupt" in buttons  # the header's button came with the widget

    reply = kernel.execute(
        "print(r['events'][-1]['type'], [e.get('is_error') for e in r['events'] "
        "if e['type'] == 'tool_result'])",
        reply=True,
        timeout=30,
    )
    assert reply["content"]["status"] == "ok"
    sessions = proc.get("agents/sessions").json()["sessions"]
    [session] = [s for s in sessions if s["name"].startswith("code-assistant:default")]
    tree = proc.get(f"files/{session['session_id']}").json()
    assert "marker.txt" in [n["name"] for n in tree["tree"]]
