"""The runner's side of the ``jupyter`` tools: a call becomes a ``tool_call`` line on the
event buffer and waits for the server's answer; bad answers are 4xx, a silent server a
tool error the agent reads."""

from __future__ import annotations

import asyncio
import json

import pytest

from agcluster_jupyter.config import AgentConfig
from agcluster_jupyter.errors import BadRequest, NotFound
from agcluster_jupyter.runner.eventbuffer import EventBuffer
from agcluster_jupyter.runner.jupyter_tools import JUPYTER_TOOLS, ToolBroker, tool_names
from agcluster_jupyter.runner.options import build_sdk_options


async def test_a_call_is_a_numbered_line_and_its_answer_the_tool_result() -> None:
    buffer = EventBuffer()
    broker = ToolBroker(buffer.append_line)
    call = asyncio.ensure_future(broker.call("read_notebook", {"path": "a.ipynb"}))
    await asyncio.sleep(0)
    (line,) = buffer.events()
    assert line["rseq"] == 1 and "event" not in line
    request = line["tool_call"]
    assert (request["tool"], request["args"]) == ("read_notebook", {"path": "a.ipynb"})
    assert broker.pending == [request["call_id"]]
    with pytest.raises(BadRequest):
        broker.resolve(request["call_id"], {"result": 1, "error": "both"})
    with pytest.raises(BadRequest):
        broker.resolve(request["call_id"], {"error": 3})
    with pytest.raises(NotFound):
        broker.resolve("call_other", {"result": {}})
    broker.resolve(request["call_id"], {"result": {"cells": []}})
    assert await call == {"content": [{"type": "text", "text": '{"cells": []}'}], "is_error": False}
    assert broker.pending == []
    with pytest.raises(NotFound):  # answered once only
        broker.resolve(request["call_id"], {"result": {}})


async def test_errors_timeouts_and_interrupts_are_tool_errors() -> None:
    buffer = EventBuffer()
    broker = ToolBroker(buffer.append_line)
    call = asyncio.ensure_future(broker.call("edit_notebook", {}))
    await asyncio.sleep(0)
    broker.resolve(buffer.events()[-1]["tool_call"]["call_id"], {"error": "stale: read it again"})
    assert await call == {
        "content": [{"type": "text", "text": "stale: read it again"}],
        "is_error": True,
    }
    broker.timeout = 0.05
    answer = await broker.call("list_notebooks", {})
    assert answer["is_error"] and "did not answer list_notebooks" in answer["content"][0]["text"]
    broker.timeout = 30
    waiting = asyncio.ensure_future(broker.call("list_notebooks", {}))
    await asyncio.sleep(0)
    broker.cancel_all("interrupted by the user")
    assert (await waiting)["content"][0]["text"] == "error: interrupted by the user"


def test_the_tools_reach_the_model_directly_and_are_approved_as_the_mode_says() -> None:
    names = tool_names()
    assert names == [f"mcp__jupyter__{n}" for n in JUPYTER_TOOLS]
    server = {"type": "sdk", "name": "jupyter", "instance": object()}
    base = {"id": "t", "allowed_tools": ["Read"], "system_prompt": "x"}
    for mode, approved in (
        ("acceptEdits", set(names)),
        ("plan", {"mcp__jupyter__list_notebooks", "mcp__jupyter__read_notebook"}),
        ("default", set()),  # can_use_tool answers: reads allowed, edits asked
    ):
        config = AgentConfig.model_validate({**base, "permission_mode": mode})
        options = build_sdk_options(config, cwd="/w", env={}, jupyter=server)
        assert set(names) <= set(options.tools or [])
        assert {t for t in options.allowed_tools if t.startswith("mcp__jupyter")} == approved
        assert options.mcp_servers["jupyter"] is server  # type: ignore[index]
    without = build_sdk_options(AgentConfig.model_validate(base), cwd="/w", env={})
    assert not any(t.startswith("mcp__jupyter") for t in without.tools or [])
    assert "jupyter" not in without.mcp_servers  # type: ignore[operator]
    json.dumps(JUPYTER_TOOLS)  # the schemas are plain JSON


def test_a_config_may_not_name_its_own_server_jupyter() -> None:
    from agcluster_jupyter.config import ConfigError

    with pytest.raises((ConfigError, ValueError), match="reserved"):
        AgentConfig.model_validate(
            {"id": "t", "mcp_servers": {"jupyter": {"type": "stdio", "command": "x"}}}
        )
