"""The REST + SSE API end to end: a real Jupyter server, the real runner, the real claude
CLI through the real SDK, and the scripted model behind the gateway."""

from __future__ import annotations

import asyncio
import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError

from ..support import (
    CAREFUL,
    TEST_KEY,
    bash_scenario,
    chat_sse,
    descendants,
    expect_error,
    next_permission_request,
    parse_sse,
    runner_pids,
)

pytestmark = pytest.mark.cli


async def test_unauthenticated_requests_are_refused(
    jp_serverapp: Any, http_server_client: Any, jp_base_url: str
) -> None:
    for method, path in [
        ("GET", "health"),
        ("GET", "agents/sessions"),
        ("POST", "agents/launch"),
        ("GET", "files/x"),
    ]:
        response = await http_server_client.fetch(
            f"{jp_base_url}api/agcluster/{path}",
            method=method,
            body="{}" if method == "POST" else None,
            raise_error=False,
        )
        assert response.code == 403, (method, path, response.code)


async def test_health_says_local_has_no_isolation(api: Any) -> None:
    health = await api("health")
    assert health["provider"] == "local"
    assert health["provider_ok"] is True
    assert health["isolated"] is False
    assert "no isolation" in health["warning"]
    assert health["server_key"] is True


async def test_configs_list_and_get(api: Any) -> None:
    listing = await api("configs/")
    ids = {c["id"] for c in listing["configs"]}
    assert {"code-assistant", "research-agent", "data-analysis", "fullstack-team"} <= ids
    assert listing["total"] == len(listing["configs"])
    full = await api("configs/fullstack-team")
    assert set(full["agents"]) == {"frontend", "backend", "devops"}
    await expect_error(api("configs/nope"), 404)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"config_id": "no-such-preset"}, "config_id"),
        ({"config": {"id": "x", "allowed_tools": ["Bash", "Teleport"]}}, "config.allowed_tools"),
        ({"config": {"id": "x", "resource_limits": {"memory": "lots"}}}, "config.resource_limits"),
        ({"config_id": "code-assistant", "workspace": "../x"}, "workspace"),
        ({"config_id": "code-assistant", "nmae": "typo"}, "nmae"),
        ({"config_id": "code-assistant", "notebook": 3}, "notebook"),
        ({"config": {"id": "x", "permission_mode": "yolo"}}, "config.permission_mode"),
        ({"config": {"id": "x", "max_turns": 0}}, "config.max_turns"),
        ({}, ""),
    ],
)
async def test_bad_launch_bodies_get_400_naming_the_field(
    api: Any, body: dict[str, Any], field: str
) -> None:
    reply = await expect_error(api("agents/launch", method="POST", body=body), 400)
    if field:
        assert field.split(".")[-1] in reply["message"] or field in reply.get("field", "")


async def test_a_session_says_what_tells_it_apart(api: Any, launched: Any) -> None:
    sid = (await launched("code-assistant", name="nightly", notebook="work/sales.ipynb"))[
        "session_id"
    ]
    details = await api(f"agents/sessions/{sid}")
    assert (details["name"], details["notebook"], details["first_prompt"]) == (
        "nightly",
        "work/sales.ipynb",
        "",
    )
    await chat_sse(api, sid, "  hello there  " + "x" * 300)
    await chat_sse(api, sid, "a second message")
    details = await api(f"agents/sessions/{sid}")
    assert details["first_prompt"] == ("hello there  " + "x" * 300)[:200]
    listed = {s["session_id"]: s for s in (await api("agents/sessions"))["sessions"]}
    assert listed[sid]["first_prompt"] == details["first_prompt"]


async def test_malformed_json_gets_400(api: Any) -> None:
    reply = await expect_error(api("agents/launch", method="POST", body="{not json"), 400)
    assert "JSON" in reply["message"]


@pytest.mark.no_server_key
async def test_launch_without_any_key_says_how_to_give_one(jp_fetch: Any) -> None:
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch(
            "api",
            "agcluster",
            "agents",
            "launch",
            method="POST",
            body=json.dumps({"config_id": "code-assistant"}),
        )
    assert info.value.code == 400
    body = json.loads(info.value.response.body)  # type: ignore[union-attr]
    assert "ANTHROPIC_API_KEY" in body["message"] and "api_key" in body["message"]


async def test_code_assistant_end_to_end(
    api: Any, launched: Any, agent_dirs: dict[str, Path]
) -> None:
    session = await launched("code-assistant")
    assert session["status"] == "ready"
    assert "no isolation" in session["warning"]
    session_id = session["session_id"]

    events = await chat_sse(api, session_id, "Please analyse some data")
    types = [e["type"] for e in events]
    assert types[-1] == "done"
    assert [e["seq"] for e in events] == list(
        range(events[0]["seq"], events[0]["seq"] + len(events))
    )
    tools = [e["name"] for e in events if e["type"] == "tool_use"]
    assert {"Write", "Bash", "Edit"} <= set(tools), tools
    results = {e["tool_use_id"]: e for e in events if e["type"] == "tool_result"}
    bash_ids = [e["tool_use_id"] for e in events if e["type"] == "tool_use" and e["name"] == "Bash"]
    assert "mean: 21.5 C" in results[bash_ids[0]]["output"]
    assert "median" in results[bash_ids[-1]]["output"]
    todos = [e for e in events if e["type"] == "todo_update"]
    assert todos, "the task-tracking tool gave no todo_update"
    assert all(t["status"] == "completed" for t in todos[-1]["todos"])
    assert "text_delta" in types and "message" in types
    result = next(e for e in events if e["type"] == "result")
    assert result["is_error"] is False
    assert result["session_usage"]["input_tokens"] > 0

    # the files the agent wrote: on disk, in the tree, in the ZIP
    workspace = Path(session["workspace"])
    assert "statistics.median" in (workspace / "analysis.py").read_text()
    tree = await api(f"files/{session_id}")
    names = [node["name"] for node in tree["tree"]]
    assert "analysis.py" in names
    response = await api(f"files/{session_id}/download", raw=True)
    archive = zipfile.ZipFile(io.BytesIO(response.body))
    assert "analysis.py" in archive.namelist()

    details = await api(f"agents/sessions/{session_id}")
    assert details["state"] == "idle"
    assert details["usage"]["input_tokens"] > 0 and details["usage"]["output_tokens"] > 0
    assert details["turns"] == 1
    # the session's cost is what its results reported, summed, kept with the record
    assert details["cost_usd"] == pytest.approx(result["cost_usd"] or 0.0, abs=1e-6)
    # the workspace folder is outside the Jupyter tree here: nothing to open in Lab
    assert details["contents_path"] is None
    # the list has what the panel shows per session: usage, cost, resources
    [listed] = (await api("agents/sessions"))["sessions"]
    assert listed["cost_usd"] == details["cost_usd"] and listed["usage"] == details["usage"]
    assert listed["resources"]["memory_bytes"] > 0, listed["resources"]

    # the key is nowhere on disk and in no runner's environment
    for root in agent_dirs.values():
        for dirpath, _, files in os.walk(root):
            for name in files:
                path = Path(dirpath, name)
                if path.is_socket():
                    continue
                assert TEST_KEY.encode() not in path.read_bytes(), path
    processes: set[int] = set()
    for runner in runner_pids(str(agent_dirs["base"])):
        processes |= {runner, *descendants(runner)}
    assert len(processes) >= 2, "expected the runner and its claude CLI"
    for pid in processes:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        assert TEST_KEY.encode() not in environ


async def test_chat_json_mode_returns_text_result_and_events(api: Any, launched: Any) -> None:
    session = await launched("code-assistant")
    reply = await api(
        f"agents/{session['session_id']}/chat",
        method="POST",
        body={"message": "hello there"},
        request_timeout=120,
    )
    assert "scripted demo model" in reply["text"]
    assert reply["result"]["type"] == "result"
    assert reply["events"][-1]["type"] == "done"


async def test_bad_chat_bodies(api: Any, launched: Any) -> None:
    session = await launched("code-assistant")
    sid = session["session_id"]
    await expect_error(api(f"agents/{sid}/chat", method="POST", body={"message": ""}), 400)
    await expect_error(api(f"agents/{sid}/chat", method="POST", body={"msg": "hi"}), 400)
    await expect_error(
        api("agents/unknown-session/chat", method="POST", body={"message": "hi"}), 404
    )


async def test_busy_session_answers_409_and_interrupt_ends_the_turn(
    api: Any, launched: Any, scripted_model: Any
) -> None:
    scripted_model.add_scenarios(
        [bash_scenario("slow job", "python3 -c 'import time; time.sleep(30)'")]
    )
    session = await launched("code-assistant")
    sid = session["session_id"]
    turn = asyncio.ensure_future(chat_sse(api, sid, "run the slow job"))
    # wait until the slow tool is running
    for _ in range(200):
        details = await api(f"agents/sessions/{sid}")
        if details["state"] == "busy":
            events = parse_sse(await api(f"agents/{sid}/events", params={"follow": "false"}))
            if any(e["type"] == "tool_use" for e in events):
                break
        await asyncio.sleep(0.1)
    else:
        pytest.fail("the slow turn never started its tool")
    await expect_error(api(f"agents/{sid}/chat", method="POST", body={"message": "another"}), 409)
    started = asyncio.get_running_loop().time()
    reply = await api(f"agents/{sid}/interrupt", method="POST", body={})
    assert reply["interrupted"] is True
    events = await asyncio.wait_for(turn, 20)
    assert events[-1]["type"] == "done"
    assert asyncio.get_running_loop().time() - started < 10
    # the same session takes the next turn
    events = await chat_sse(api, sid, "hello again")
    assert events[-1]["type"] == "done"


async def test_event_log_replays_from_last_event_id_and_after(api: Any, launched: Any) -> None:
    session = await launched("code-assistant")
    sid = session["session_id"]
    await chat_sse(api, sid, "hello")
    everything = parse_sse(await api(f"agents/{sid}/events", params={"follow": "false"}))
    assert [e["seq"] for e in everything] == list(range(1, len(everything) + 1))
    assert everything[0]["type"] == "status" and everything[0]["state"] == "starting"
    tail = parse_sse(await api(f"agents/{sid}/events", params={"follow": "false", "after": "3"}))
    assert tail == everything[3:]
    tail = parse_sse(
        await api(
            f"agents/{sid}/events", params={"follow": "false"}, headers={"Last-Event-ID": "5"}
        )
    )
    assert tail == everything[5:]
    await expect_error(api(f"agents/{sid}/events", params={"after": "x"}), 400)
    reply = await expect_error(api(f"agents/{sid}/events", params={"follow": "nope"}), 400)
    assert reply["field"] == "follow"


async def test_permission_request_waits_for_approval(
    api: Any, launched: Any, scripted_model: Any
) -> None:
    scripted_model.add_scenarios([bash_scenario("make marker", "echo approved > marker.txt")])
    session = await launched(config=CAREFUL)
    sid = session["session_id"]
    turn = asyncio.ensure_future(chat_sse(api, sid, "make marker please"))
    request = await next_permission_request(api, sid, turn)
    assert request["tool_name"] == "Bash"
    assert not (Path(session["workspace"]) / "marker.txt").exists()
    await expect_error(
        api(f"agents/{sid}/permissions/nope", method="POST", body={"decision": "allow"}), 404
    )
    await expect_error(
        api(
            f"agents/{sid}/permissions/{request['request_id']}",
            method="POST",
            body={"decision": "maybe"},
        ),
        400,
    )
    answer = await api(
        f"agents/{sid}/permissions/{request['request_id']}",
        method="POST",
        body={"decision": "allow"},
    )
    events = await asyncio.wait_for(turn, 60)
    assert events[-1]["type"] == "done"
    assert (Path(session["workspace"]) / "marker.txt").read_text().strip() == "approved"
    # the log records who answered: the Jupyter user behind the request
    log = parse_sse(await api(f"agents/{sid}/events", params={"follow": "false"}))
    (answered,) = [e for e in log if e["type"] == "permission_answer"]
    assert answered["request_id"] == request["request_id"]
    assert answered["decision"] == "allow" and answered["reason"] == "user"
    assert answered["answered_by"] == answer["answered_by"] != ""


async def test_three_sessions_at_once(api: Any, launched: Any) -> None:
    sessions = await asyncio.gather(*(launched("code-assistant") for _ in range(3)))
    ids = [s["session_id"] for s in sessions]
    assert len(set(ids)) == 3
    turns = await asyncio.gather(*(chat_sse(api, sid, "Please analyse some data") for sid in ids))
    for sid, events in zip(ids, turns, strict=True):
        assert events[-1]["type"] == "done"
        assert all(e["session_id"] == sid for e in events)
        assert any(e["type"] == "tool_use" and e["name"] == "Edit" for e in events)
    for s in sessions:
        assert "median" in (Path(s["workspace"]) / "analysis.py").read_text()
    listing = await api("agents/sessions")
    assert {s["session_id"] for s in listing["sessions"]} >= set(ids)


async def test_export_markdown_and_jsonl(api: Any, launched: Any) -> None:
    session = await launched("code-assistant")
    sid = session["session_id"]
    await chat_sse(api, sid, "Please analyse some data")
    md = await api(f"agents/{sid}/export", params={"format": "md"})
    assert "python3 analysis.py" in md and "**Assistant:**" in md and "**User:**" in md
    jsonl = await api(f"agents/{sid}/export", params={"format": "jsonl"})
    lines = [json.loads(line) for line in jsonl.splitlines()]
    assert lines[0]["seq"] == 1 and lines[-1]["type"] == "done"
    await expect_error(api(f"agents/{sid}/export", params={"format": "pdf"}), 400)


async def test_token_budget_stops_the_model_with_a_clear_error(api: Any, launched: Any) -> None:
    config = {"id": "tight", "allowed_tools": ["Bash"], "token_budget": 1}
    session = await launched(config=config)
    sid = session["session_id"]
    first = await chat_sse(api, sid, "hello")
    assert first[-1]["type"] == "done"
    # the first call crossed it: the next message is turned away, saying what was used
    error = await expect_error(
        api(f"agents/{sid}/chat", method="POST", body={"message": "hello again"}), 429
    )
    assert "token budget of 1 tokens is used up" in error["message"]


async def test_delete_stops_and_purge_removes_everything(
    api: Any, launched: Any, agent_dirs: dict[str, Path]
) -> None:
    before = runner_pids(str(agent_dirs["base"]))
    session = await launched("code-assistant")
    sid = session["session_id"]
    assert runner_pids(str(agent_dirs["base"])) - before
    reply = await api(f"agents/sessions/{sid}", method="DELETE")
    assert reply["stopped"] is True
    details = await api(f"agents/sessions/{sid}")
    assert details["state"] == "stopped"
    assert Path(session["workspace"]).is_dir()
    assert not (runner_pids(str(agent_dirs["base"])) - before)
    # a stopped session resumes on the next message
    events = await chat_sse(api, sid, "hello")
    assert events[-1]["type"] == "done"
    assert any(e["type"] == "status" and e["state"] == "ready" for e in events)
    # a typo is a 400 that stops and deletes nothing (it used to mean "keep"; silently)
    reply = await expect_error(
        api(f"agents/sessions/{sid}", method="DELETE", params={"purge": "ture"}), 400
    )
    assert reply["field"] == "purge" and "true or false" in reply["message"]
    assert (await api(f"agents/sessions/{sid}"))["state"] == "idle"
    assert Path(session["workspace"]).is_dir()
    await api(f"agents/sessions/{sid}", method="DELETE", params={"purge": "true"})
    await expect_error(api(f"agents/sessions/{sid}"), 404)
    assert not Path(session["workspace"]).exists()
    assert not (runner_pids(str(agent_dirs["base"])) - before)


async def test_interrupt_right_after_launch_is_a_calm_no(api: Any, launched: Any) -> None:
    """The runner may still be loading the SDK: an interrupt with no turn running answers
    ``interrupted: false`` at once instead of a 503 "the runner is starting"."""
    sid = (await launched("code-assistant"))["session_id"]
    reply = await api(f"agents/{sid}/interrupt", method="POST", body={})
    assert reply == {"session_id": sid, "interrupted": False}
