"""The kernel tools with a real kernel, this real server and the real CLI: the scripted
model calls ``mcp__jupyter__{list_variables, inspect_variable, run_cell, run_code}``, the
runner forwards each call, this server checks it (grants, the granted kernel process,
approval of the exact code) and runs it in the notebook's running kernel."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import nbformat
import pytest

from agcluster_jupyter.kernels.door import KernelDoor

from ..support import chat_sse, event_log, expect_error, next_permission_request
from .agent_tree import AGENT, agent_reachable_root

pytestmark = pytest.mark.cli

jp_root_dir = pytest.fixture(agent_reachable_root, name="jp_root_dir")


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any]) -> dict[str, Any]:
    config = json.loads(json.dumps(jp_server_config))
    config["AgClusterApp"]["kernel_call_timeout"] = 4.0
    return config


def _notebook(root: Path, name: str, *sources: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [nbformat.v4.new_code_cell(s, id=f"c{i}") for i, s in enumerate(sources)]
    nbformat.write(nb, root / name)
    if os.geteuid() == 0:
        os.chown(root / name, AGENT.pw_uid, AGENT.pw_gid)


async def _kernel_for(serverapp: Any, name: str, setup: str) -> KernelDoor:
    """The notebook's kernel, as a page opening it starts one, with the user's state."""
    await serverapp.session_manager.create_session(
        path=name, name=name, type="notebook", kernel_name="python3"
    )
    door = KernelDoor(serverapp.kernel_manager, serverapp.session_manager)
    ref = await door.kernel_of(name)
    run = await door.execute(ref, setup, timeout=60)
    assert run.status == "ok", run.outputs
    return door


async def _value(door: KernelDoor, name: str, expression: str) -> Any:
    """What ``expression`` is in the kernel now (read without running a cell)."""
    ref = await door.kernel_of(name)
    run = await door.execute(
        ref, "", timeout=30, silent=True, store_history=False, user_expressions={"v": expression}
    )
    return run.user_expressions["v"]["data"]["text/plain"]


def _tool(tool: str, **args: Any) -> dict[str, Any]:
    return {"tool_use": {"name": f"mcp__jupyter__{tool}", "input": args}}


def _results(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == "tool_result"]


async def _answer_next_request(api: Any, sid: str, turn: Any, decision: str) -> dict[str, Any]:
    """Wait for the turn's next unanswered permission request and answer it."""
    request = await next_permission_request(api, sid, turn)
    await api(
        f"agents/{sid}/permissions/{request['request_id']}",
        method="POST",
        body={"decision": decision, "message": "" if decision == "allow" else "not now"},
    )
    return request


async def test_the_agent_looks_at_a_dataframe_and_an_array_without_running_anything(
    api: Any, launched: Any, scripted_model: Any, jp_serverapp: Any, jp_root_dir: Path
) -> None:
    _notebook(jp_root_dir, "fit.ipynb", "model = None")
    door = await _kernel_for(
        jp_serverapp,
        "fit.ipynb",
        "import numpy as np, pandas as pd\n"
        "df = pd.DataFrame({'x': [1.0, 2.0, 3.0], 'label': ['a', 'b', 'c']})\n"
        "arr = np.arange(12).reshape(3, 4)\nbig = 'y' * 50000",
    )
    history = await _value(door, "fit.ipynb", "len(In)")
    scripted_model.add_scenarios(
        [
            {
                "match": "why does my model underfit",
                "steps": [
                    [_tool("list_variables", notebook="fit.ipynb")],
                    [_tool("inspect_variable", notebook="fit.ipynb", name="df")],
                    [_tool("inspect_variable", notebook="fit.ipynb", name="arr")],
                    [_tool("inspect_variable", notebook="fit.ipynb", name="big")],
                    [_tool("inspect_variable", notebook="fit.ipynb", name="df; import os")],
                    [_tool("inspect_variable", notebook="other.ipynb", name="df")],
                ],
                "final": "looked",
            }
        ]
    )
    session = await launched("code-assistant", notebooks=["fit.ipynb"])
    assert session["kernels"] == ["fit.ipynb"] and session["kernel_access"] == "ask"
    events = await chat_sse(api, session["session_id"], "why does my model underfit?")
    listed, frame, array, big, hostile, other = _results(events)
    assert not listed["is_error"], listed
    names = {v["name"]: v for v in json.loads(listed["output"])["variables"]}
    assert names["df"]["shape"] == [3, 2] and names["arr"]["shape"] == [3, 4]
    summary = json.loads(frame["output"])
    assert summary["type"] == "pandas.DataFrame" and summary["shape"] == [3, 2]
    assert summary["dtypes"]["x"] == "float64" and "label" in summary["head"]
    summary = json.loads(array["output"])
    assert summary["shape"] == [3, 4] and summary["dtype"] == "int64"
    summary = json.loads(big["output"])
    assert summary["len"] == 50000 and summary["truncated"] is True
    assert len(summary["repr"]) <= 2000
    assert hostile["is_error"] and "not a Python variable name" in hostile["output"]
    assert other["is_error"] and "not granted" in other["output"]
    # looked, nothing ran: no prompt, no history entry
    assert not [e for e in events if e["type"] == "permission_request"]
    assert await _value(door, "fit.ipynb", "len(In)") == history
    # and the key is not in the kernel's environment (the server took it out of its own)
    assert await _value(door, "fit.ipynb", "'ANTHROPIC_API_KEY' in __import__('os').environ") == (
        "False"
    )
    calls = [e for e in await event_log(api, session["session_id"]) if e["type"] == "kernel_call"]
    assert [(c["tool"], c["outcome"], c["approved_by"]) for c in calls][:3] == [
        ("list_variables", "ok", "inspection"),
        ("inspect_variable", "ok", "inspection"),
        ("inspect_variable", "ok", "inspection"),
    ]


async def test_run_cell_asks_first_and_a_denial_runs_nothing(
    api: Any, launched: Any, scripted_model: Any, jp_serverapp: Any, jp_root_dir: Path
) -> None:
    _notebook(jp_root_dir, "run.ipynb", "counter += 1\nprint('ran', counter)")
    door = await _kernel_for(jp_serverapp, "run.ipynb", "counter = 0")
    scripted_model.add_scenarios(
        [
            {
                "match": "run the counter cell",
                "steps": [[_tool("run_cell", notebook="run.ipynb", cell_id="c0")]],
                "final": "{result}",
            },
            {
                "match": "reset the counter",
                "steps": [[_tool("run_code", notebook="run.ipynb", code="counter = 100")]],
                "final": "{result}",
            },
        ]
    )
    session = await launched("code-assistant", notebooks=["run.ipynb"])
    sid = session["session_id"]
    turn = asyncio.ensure_future(chat_sse(api, sid, "run the counter cell"))
    request = await _answer_next_request(api, sid, turn, "allow")
    # the request shows the exact code and where it runs
    assert request["tool_name"] == "mcp__jupyter__run_cell"
    assert request["input"]["code"] == "counter += 1\nprint('ran', counter)"
    assert request["input"]["notebook"] == "run.ipynb" and request["input"]["cell_id"] == "c0"
    (result,) = _results(await asyncio.wait_for(turn, 120))
    assert not result["is_error"], result
    reply = json.loads(result["output"])
    assert reply["status"] == "ok" and "ran 1" in reply["outputs"][0]["text"]
    assert reply["written_to_notebook"] is True
    cell = nbformat.read(jp_root_dir / "run.ipynb", as_version=4).cells[0]
    assert "ran 1" in cell.outputs[0]["text"] and cell.execution_count == reply["execution_count"]

    turn = asyncio.ensure_future(chat_sse(api, sid, "reset the counter"))
    request = await _answer_next_request(api, sid, turn, "deny")
    assert request["input"]["code"] == "counter = 100"
    (result,) = _results(await asyncio.wait_for(turn, 120))
    assert result["is_error"] and "denied" in result["output"] and "not now" in result["output"]
    assert await _value(door, "run.ipynb", "counter") == "1"  # nothing ran
    calls = [e for e in await event_log(api, sid) if e["type"] == "kernel_call"]
    assert [(c["tool"], c["outcome"], c["code"]) for c in calls] == [
        ("run_cell", "ok", "counter += 1\nprint('ran', counter)"),
        ("run_code", "denied", "counter = 100"),
    ]
    assert calls[0]["approved_by"] and calls[0]["approved_by"] not in ("inspection", "ahead")


async def test_timeouts_caps_and_a_restarted_kernel(
    api: Any, launched: Any, scripted_model: Any, jp_serverapp: Any, jp_root_dir: Path
) -> None:
    _notebook(jp_root_dir, "long.ipynb", "x = 1")
    door = await _kernel_for(jp_serverapp, "long.ipynb", "x = 1")
    scripted_model.add_scenarios(
        [
            {
                "match": "take your time",
                "steps": [
                    [_tool("run_code", notebook="long.ipynb", code="import time; time.sleep(60)")],
                    [_tool("run_code", notebook="long.ipynb", code="print('z' * 100000)")],
                    [_tool("inspect_variable", notebook="long.ipynb", name="x")],
                ],
                "final": "done",
            },
            {
                "match": "after the restart",
                "steps": [[_tool("inspect_variable", notebook="long.ipynb", name="x")]],
                "final": "{result}",
            },
        ]
    )
    session = await launched("code-assistant", notebooks=["long.ipynb"], kernel_access="allow")
    sid = session["session_id"]
    slow, loud, after = _results(await chat_sse(api, sid, "take your time"))
    reply = json.loads(slow["output"])
    assert reply["status"] == "timeout" and "interrupted" in reply["note"]
    reply = json.loads(loud["output"])
    text = reply["outputs"][0]["text"]
    assert len(text) < 3000 and "more characters not shown" in text
    assert json.loads(after["output"])["repr"] == "1"  # the kernel is usable again
    calls = [e for e in await event_log(api, sid) if e["type"] == "kernel_call"]
    assert calls[0]["outcome"] == "timeout" and calls[0]["approved_by"] == "kernel_access allow"
    assert calls[0]["duration_ms"] >= 4000

    # the user restarts the kernel: a new process, not the one granted
    ref = await door.kernel_of("long.ipynb")
    await jp_serverapp.kernel_manager.restart_kernel(ref.kernel_id)
    (result,) = _results(await chat_sse(api, sid, "after the restart"))
    assert result["is_error"] and "restarted since the user granted it" in result["output"]

    # until the user grants it again
    granted = await api(f"agents/{sid}/kernels", method="POST", body={"notebook": "long.ipynb"})
    assert granted == {"notebook": "long.ipynb", "kernel_id": ref.kernel_id}
    scripted_model.add_scenarios(
        [
            {
                "match": "granted again",
                "steps": [[_tool("list_variables", notebook="long.ipynb")]],
                "final": "{result}",
            }
        ]
    )
    (result,) = _results(await chat_sse(api, sid, "granted again"))
    assert not result["is_error"] and json.loads(result["output"])["variables"] == []
    # a notebook the session was not granted, or one without a kernel: said so
    error = await expect_error(
        api(f"agents/{sid}/kernels", method="POST", body={"notebook": "other.ipynb"}), 409
    )
    assert "not granted" in error["message"]
    await jp_serverapp.kernel_manager.shutdown_kernel(ref.kernel_id)
    error = await expect_error(
        api(f"agents/{sid}/kernels", method="POST", body={"notebook": "long.ipynb"}), 409
    )
    assert "no running kernel" in error["message"]


async def test_kernel_access_deny_and_the_unattended_rule(
    api: Any, launched: Any, scripted_model: Any, jp_root_dir: Path
) -> None:
    scripted_model.add_scenarios(
        [
            {
                "match": "peek at the kernel",
                "steps": [[_tool("list_variables", notebook="n.ipynb")]],
                "final": "{result}",
            }
        ]
    )
    _notebook(jp_root_dir, "n.ipynb", "a = 1")
    session = await launched("code-assistant", notebooks=["n.ipynb"], kernel_access="deny")
    events = await chat_sse(api, session["session_id"], "peek at the kernel")
    # not offered: the model was not given the tool, the call never reaches a kernel
    offered = scripted_model.message_requests[-1].tool_names
    assert "mcp__jupyter__list_variables" not in offered
    assert "mcp__jupyter__read_notebook" in offered
    assert _results(events)[0]["is_error"]

    config = {
        "id": "unattended",
        "permission_mode": "bypassPermissions",
        "kernel_access": "allow",
    }
    error = await expect_error(api("agents/launch", method="POST", body={"config": config}), 400)
    assert error["field"] == "kernel_access"
    assert "allow_unattended_kernel_access" in error["message"]
