"""The scripted model: step choice from conversations (pure), wire shapes, and the HTTP
server (401, JSON mode, title requests, faults, usage, records)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from agcluster_jupyter.runner.protocol import denial_message
from agcluster_jupyter.testing import (
    Fault,
    ScriptedModelServer,
    ScriptError,
    TextBlock,
    ThinkingBlock,
    ToolUseBlock,
    choose_reply,
    conversation_position,
    demo_script,
    parse_script,
)
from agcluster_jupyter.testing.script import (
    Refusal,
    created_task_ids,
    last_tool_result,
    refused_calls,
    working_directory,
)
from agcluster_jupyter.testing.sse import content_blocks, format_sse, stream_events

REMINDER = "<system-reminder>\nAttribution for git commits...\n</system-reminder>\n"
INTERRUPTED = "[Request interrupted by user for tool use]"


# -- conversation builders, shaped like the CLI's requests ------------------------------


def first_user(prompt: str) -> dict[str, Any]:
    return {
        "role": "user",
        "content": [{"type": "text", "text": REMINDER}, {"type": "text", "text": prompt}],
    }


def env_message(cwd: str = "/ws") -> dict[str, Any]:
    text = f"# Environment\n - Primary working directory: {cwd}\n - Platform: linux\n"
    return {"role": "system", "content": [{"type": "text", "text": text}]}


def tool_call(tool_id: str, name: str = "Bash") -> dict[str, Any]:
    block = {"type": "tool_use", "id": tool_id, "name": name, "input": {}}
    return {"role": "assistant", "content": [block]}


def tool_result(tool_id: str, text: str = "ok") -> dict[str, Any]:
    block = {"type": "tool_result", "tool_use_id": tool_id, "content": text}
    return {"role": "user", "content": [block]}


def body(messages: list[dict[str, Any]], tools: list[str] | None = None, **extra: Any) -> dict:
    names = ["Bash", "Write", "Edit", "Read"] if tools is None else tools
    tool_defs = [{"name": n, "input_schema": {"type": "object"}} for n in names]
    return {"model": "claude-test", "messages": messages, "tools": tool_defs, **extra}


SCRIPT = parse_script(
    [
        {
            "name": "files",
            "match": "make a file",
            "steps": [
                [{"text": "Writing {prompt}"}, {"tool_use": {"name": "Write", "input": {}}}],
                [{"tool_use": {"name": "Bash", "input": {"command": "ls {cwd}"}}}],
            ],
            "final": "All done: {prompt}",
        },
        {"match": "re:^count (\\d+)$", "steps": [[{"text": "counting"}]]},
        {"match": ["alpha", "beta"], "steps": ["greek"]},
    ]
)


# -- the conversation ------------------------------------------------------------------


def test_first_message_skips_system_reminder() -> None:
    assert conversation_position([first_user("make a file"), env_message()]) == (
        "make a file",
        0,
    )


def test_rounds_count_model_responses_after_the_prompt() -> None:
    messages = [first_user("make a file"), env_message()]
    for n in range(1, 4):
        messages += [tool_call(f"t{n}"), tool_result(f"t{n}")]
        assert conversation_position(messages) == ("make a file", n)


def test_a_second_prompt_restarts_the_count() -> None:
    messages = [
        first_user("first"),
        tool_call("t1"),
        tool_result("t1"),
        {"role": "assistant", "content": [{"type": "text", "text": "done"}]},
        {"role": "user", "content": "second"},
    ]
    assert conversation_position(messages) == ("second", 0)
    assert conversation_position([*messages, tool_call("t2"), tool_result("t2")]) == (
        "second",
        1,
    )


def test_interrupt_merges_tool_result_marker_and_new_prompt() -> None:
    merged = {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "t1", "content": "interrupted"},
            {"type": "text", "text": INTERRUPTED},
            {"type": "text", "text": "try again"},
        ],
    }
    messages = [first_user("slow one"), tool_call("t1"), merged]
    assert conversation_position(messages) == ("try again", 0)


def test_interrupt_marker_alone_is_not_a_prompt() -> None:
    marker = {
        "role": "user",
        "content": [{"type": "text", "text": "[Request interrupted by user]"}],
    }
    assert conversation_position([first_user("go"), marker]) == ("go", 0)


def test_reminders_next_to_tool_results_are_not_prompts() -> None:
    result = tool_result("t1")
    result["content"].append({"type": "text", "text": "<system-reminder>tasks</system-reminder>"})
    assert conversation_position([first_user("go"), tool_call("t1"), result]) == ("go", 1)


def test_no_user_prompt() -> None:
    assert conversation_position([]) == ("", 0)


def test_working_directory_and_task_ids() -> None:
    assert working_directory(body([first_user("x"), env_message("/tmp/w s")])) == "/tmp/w"
    assert working_directory(body([first_user("x")])) == "."
    messages = [
        first_user("old"),
        tool_call("a", "TaskCreate"),
        tool_result("a", "Task #1 created successfully: old"),
        {"role": "user", "content": "new"},
        tool_call("b", "TaskCreate"),
        tool_result("b", "Task #2 created successfully: x"),
    ]
    assert created_task_ids(messages) == ["2"]


# -- step choice -----------------------------------------------------------------------


def test_step_follows_the_conversation_not_a_counter() -> None:
    start = [first_user("please MAKE A FILE now"), env_message("/w")]
    r0 = choose_reply(SCRIPT, body(start))
    assert (r0.scenario, r0.step, r0.stop_reason) == ("files", 0, "tool_use")
    assert r0.blocks[0] == TextBlock("Writing please MAKE A FILE now")
    # Asking the same again (a retry, another session) gives the same step.
    assert choose_reply(SCRIPT, body(start)) == r0
    r1 = choose_reply(SCRIPT, body([*start, tool_call("t1"), tool_result("t1")]))
    assert r1.blocks == (ToolUseBlock("Bash", {"command": "ls /w"}),)
    done = [*start, tool_call("t1"), tool_result("t1"), tool_call("t2"), tool_result("t2")]
    r2 = choose_reply(SCRIPT, body(done))
    assert (r2.kind, r2.stop_reason) == ("final", "end_turn")
    assert r2.blocks == (TextBlock("All done: please MAKE A FILE now"),)


def test_regex_list_and_fallback_matching() -> None:
    assert choose_reply(SCRIPT, body([first_user("count 3")])).blocks == (TextBlock("counting"),)
    assert choose_reply(SCRIPT, body([first_user("Count 3")])).kind == "fallback"
    assert choose_reply(SCRIPT, body([first_user("beta")])).blocks == (TextBlock("greek"),)
    fallback = choose_reply(SCRIPT, body([first_user("something else")]))
    assert fallback.kind == "fallback" and "something else" in fallback.blocks[0].text  # type: ignore[union-attr]


def test_first_matching_scenario_wins() -> None:
    script = parse_script([{"match": "a", "steps": ["one"]}, {"steps": ["two"]}])
    assert choose_reply(script, body([first_user("a")])).blocks == (TextBlock("one"),)
    assert choose_reply(script, body([first_user("b")])).blocks == (TextBlock("two"),)


def test_optional_tools_are_dropped_when_not_offered() -> None:
    script = parse_script(
        {
            "steps": [
                [{"text": "plan"}, {"tool_use": {"name": "TaskCreate", "optional": True}}],
                [
                    {"tool_use": {"name": "TaskUpdate", "optional": True}},
                    {"tool_use": {"name": "Write", "input": {}}},
                ],
            ]
        }
    )
    offered = body([first_user("x")], tools=["TaskCreate", "TaskUpdate", "Write"])
    assert [b.name for b in choose_reply(script, offered).blocks[1:]] == ["TaskCreate"]  # type: ignore[union-attr]
    bare = choose_reply(script, body([first_user("x")], tools=["Write"]))
    assert bare.blocks == (ToolUseBlock("Write", {}),)


def test_task_placeholders() -> None:
    script = parse_script(
        {"steps": [["x"], [{"tool_use": {"name": "TaskUpdate", "input": {"taskId": "{task:1}"}}}]]}
    )
    messages = [first_user("x"), tool_call("a"), tool_result("a", "Task #7 created successfully")]
    reply = choose_reply(script, body(messages))
    assert reply.blocks == (ToolUseBlock("TaskUpdate", {"taskId": "7"}),)


def test_braces_in_code_are_left_alone() -> None:
    code = "print(f'{x}') {prompt} {}"
    script = parse_script({"steps": [[{"tool_use": {"name": "Write", "input": {"c": code}}}]]})
    reply = choose_reply(script, body([first_user("hi")]))
    assert reply.blocks[0] == ToolUseBlock("Write", {"c": "print(f'{x}') hi {}"})


def test_fault_blocks_combine() -> None:
    script = parse_script({"steps": [[{"delay": 0.5}, {"broken_stream": 2, "times": 1}, "x"]]})
    reply = choose_reply(script, body([first_user("go")]))
    assert reply.fault == Fault(broken_after=2, delay=0.5, times=1)
    assert reply.blocks == (TextBlock("x"),)


def test_title_request_gets_schema_json() -> None:
    schema = {
        "type": "object",
        "properties": {"title": {"type": "string"}},
        "required": ["title"],
        "additionalProperties": False,
    }
    request = body(
        [{"role": "user", "content": "analyse the sales data for march please"}],
        tools=[],
        output_config={"format": {"type": "json_schema", "schema": schema}},
    )
    reply = choose_reply(demo_script(), request)
    assert reply.kind == "structured"
    title = json.loads(reply.blocks[0].text)["title"]  # type: ignore[union-attr]
    assert title == "Analyse the sales data for"
    wrapped = {
        **request,
        "messages": [
            {
                "role": "user",
                "content": "<session>\nFix the login bug\n</session>\n\nWrite the title in ...",
            }
        ],
    }
    reply = choose_reply(demo_script(), wrapped)
    assert json.loads(reply.blocks[0].text) == {"title": "Fix the login bug"}  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "bad",
    [
        "not a list",
        [{"match": 3, "steps": []}],
        [{"match": "re:(", "steps": []}],
        [{"steps": [[{"nope": 1}]]}],
        [{"steps": [[{"error": 200}]]}],
        [{"steps": [[{"message": "no status"}]]}],
        [{"steps": [[{"error": 400, "message": 3}]]}],
        [{"steps": [[{"tool_use": {"input": {}}}]]}],
        [{"steps": [], "extra": 1}],
        [{"match": "re:(?P<prompt>x)", "steps": []}],
        [{"match": "re:(?P<result>x)", "steps": []}],
    ],
)
def test_bad_scripts_are_refused(bad: Any) -> None:
    with pytest.raises(ScriptError):
        parse_script(bad)


def test_demo_script_parses_and_offers_the_tour() -> None:
    demo = demo_script()
    assert [s.name for s in demo.scenarios] == [
        "chart",
        "analysis",
        "fibonacci py",
        "fibonacci js",
        "fibonacci sh",
        "write and run py",
        "write and run js",
        "write and run sh",
        "note",
        "greeting",
        "files",
        "default",
    ]
    tools = {
        b.name
        for s in demo.scenarios
        for step in s.steps
        for b in step
        if isinstance(b, ToolUseBlock)
    }
    assert {"TaskCreate", "TaskUpdate", "Write", "Bash", "Edit"} <= tools
    assert choose_reply(demo, body([first_user("hello there")])).scenario == "greeting"
    assert choose_reply(demo, body([first_user("what?")])).scenario == "default"


# -- regex groups, {result}, refusals -----------------------------------------------------


def call(tool_id: str, name: str, tool_input: dict[str, Any]) -> dict[str, Any]:
    block = {"type": "tool_use", "id": tool_id, "name": name, "input": tool_input}
    return {"role": "assistant", "content": [{"type": "text", "text": "on it"}, block]}


def result(tool_id: str, text: str, is_error: bool = False) -> dict[str, Any]:
    block = {"type": "tool_result", "tool_use_id": tool_id, "content": text, "is_error": is_error}
    return {"role": "user", "content": [block]}


GROUPS = parse_script(
    {
        "name": "make",
        "match": ["nothing here", r"re:(?i)make (?P<file>\w+\.txt)(?: with (?P<word>\w+))?"],
        "steps": [
            [
                {
                    "tool_use": {
                        "name": "Write",
                        "input": {"file_path": "{cwd}/{file}", "c": "{word}"},
                    }
                }
            ],
            [{"tool_use": {"name": "Bash", "input": {"command": "cat {file}"}}}],
        ],
        "final": "{file} says: {result}",
    }
)


def test_regex_groups_are_variables() -> None:
    start = [first_user("please Make notes.txt with hello"), env_message("/w")]
    reply = choose_reply(GROUPS, body(start))
    assert reply.blocks == (ToolUseBlock("Write", {"file_path": "/w/notes.txt", "c": "hello"}),)
    # a group that took no part in the match is empty
    bare = choose_reply(GROUPS, body([first_user("make a.txt"), env_message("/w")]))
    assert bare.blocks == (ToolUseBlock("Write", {"file_path": "/w/a.txt", "c": ""}),)
    assert GROUPS.scenarios[0].groups("make b.txt") == {"file": "b.txt", "word": ""}
    assert GROUPS.scenarios[0].groups("nothing here") == {}
    assert GROUPS.scenarios[0].groups("else") is None


def test_result_is_the_last_tool_result_of_the_step() -> None:
    start = [first_user("make a.txt"), env_message("/w")]
    assert last_tool_result(start) == ""
    two = {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "t1", "content": "Task updated"},
            {
                "type": "tool_result",
                "tool_use_id": "t2",
                "content": [{"type": "text", "text": "hi\n"}],
            },
        ],
    }
    done = [*start, tool_call("t0"), tool_result("t0"), tool_call("t2"), two]
    assert last_tool_result(done) == "hi"
    final = choose_reply(GROUPS, body(done))
    assert (final.kind, final.blocks) == ("final", (TextBlock("a.txt says: hi"),))
    # the results of an earlier step are not the ones being answered
    later = [*done, {"role": "assistant", "content": [{"type": "text", "text": "ok"}]}]
    assert last_tool_result(later) == ""
    assert len(last_tool_result([*start, tool_call("t"), tool_result("t", "x" * 5000)])) < 2100


def test_a_refused_call_ends_the_scenario_and_says_so() -> None:
    """After a denied Write the reply says it was refused, never "Noted" (the 04 notebook)."""
    demo = demo_script()
    start = [first_user("make another note: order more paper"), env_message("/w")]
    assert choose_reply(demo, body(start)).scenario == "note"
    write = call("w1", "Write", {"file_path": "/w/notes.md", "content": "x"})
    # the runner words every denial (the user's message, a timeout) the same way
    denied = denial_message("Write", "not now, thanks")
    assert denied == "Permission to use Write was denied: not now, thanks"
    messages = [*start, write, result("w1", denied, is_error=True)]
    assert refused_calls(messages) == [
        Refusal("Write", {"file_path": "/w/notes.md", "content": "x"}, "not now, thanks")
    ]
    reply = choose_reply(demo, body(messages))
    assert (reply.kind, reply.stop_reason, reply.scenario) == ("refused", "end_turn", "note")
    text = reply.blocks[0].text  # type: ignore[union-attr]
    assert text.startswith("I could not write `notes.md`: the Write was refused (not now, thanks)")
    assert "Noted" not in text and "Scripted reply" in text
    # without a message, and the CLI's own words for a refusal
    plain = [*start, write, result("w1", denial_message("Write"), is_error=True)]
    assert denial_message("Write") == "Permission to use Write was denied by the user."
    assert "you refused the Write." in choose_reply(demo, body(plain)).blocks[0].text  # type: ignore[union-attr]
    cli = "The user doesn't want to proceed with this tool use. The tool use was rejected."
    bash = call("b1", "Bash", {"command": "rm -rf build"})
    refused = choose_reply(demo, body([*start, bash, result("b1", cli, is_error=True)]))
    assert refused.kind == "refused"
    assert "could not run `rm -rf build`: you refused the Bash" in refused.blocks[0].text  # type: ignore[union-attr]


def test_a_failed_tool_is_not_a_refusal() -> None:
    demo = demo_script()
    start = [first_user("make a note: x"), env_message("/w")]
    write = call("w1", "Write", {"file_path": "/w/notes.md"})
    for text, is_error in [
        ("Exit code 1\ncat: x: Permission denied", True),
        ("Permission to use Write was denied: but it ran", False),  # not an error result
    ]:
        messages = [*start, write, result("w1", text, is_error=is_error)]
        assert refused_calls(messages) == []
        assert choose_reply(demo, body(messages)).kind == "final"
    # a refusal in an earlier turn does not end the next one
    old = [*start, write, result("w1", denial_message("Write", "no"), is_error=True)]
    again = [*old, {"role": "assistant", "content": "ok"}, {"role": "user", "content": "hello"}]
    assert choose_reply(demo, body(again)).scenario == "greeting"


README_PROMPT = "Write fib.py printing the first 10 Fibonacci numbers and run it"


def test_demo_writes_and_runs_the_readmes_fib_py(tmp_path: Path) -> None:
    demo = demo_script()
    start = [first_user(README_PROMPT), env_message("/w")]
    first = choose_reply(demo, body(start))
    assert first.scenario == "fibonacci py"
    [write] = [b for b in first.blocks if isinstance(b, ToolUseBlock)]
    assert write.name == "Write" and write.input["file_path"] == "/w/fib.py"
    (tmp_path / "fib.py").write_text(write.input["content"])
    ran = subprocess.run([sys.executable, "fib.py"], cwd=tmp_path, capture_output=True, text=True)
    assert ran.stdout == "0 1 1 2 3 5 8 13 21 34\n", ran.stderr
    after_write = [*start, call("w", "Write", write.input), result("w", "File created")]
    second = choose_reply(demo, body(after_write))
    [run] = [b for b in second.blocks if isinstance(b, ToolUseBlock)]
    assert run.input["command"] == "python3 fib.py"
    output = "0 1 1 2 3 5 8 13 21 34"
    done = [*after_write, call("r", "Bash", run.input), result("r", output)]
    final = choose_reply(demo, body(done))
    assert final.kind == "final"
    text = final.blocks[0].text  # type: ignore[union-attr]
    assert "`fib.py`" in text and output in text and "scripted demo model" in text


@pytest.mark.parametrize(
    ("prompt", "scenario", "command"),
    [
        ("create hello.sh and run it", "write and run sh", "bash hello.sh"),
        ("Write greet.py that says hi, then run it", "write and run py", "python3 greet.py"),
        ("create tools/hi.js and execute it", "write and run js", "node tools/hi.js"),
        ("write fib.sh printing 12 Fibonacci numbers and run it", "fibonacci sh", "bash fib.sh"),
    ],
)
def test_demo_writes_and_runs_any_named_file(prompt: str, scenario: str, command: str) -> None:
    demo = demo_script()
    start = [first_user(prompt), env_message("/w")]
    first = choose_reply(demo, body(start))
    assert first.scenario == scenario
    [write] = [b for b in first.blocks if isinstance(b, ToolUseBlock)]
    path = command.split()[-1]
    assert write.input["file_path"] == f"/w/{path}"
    assert "scripted demo model" in write.input["content"]
    then = choose_reply(demo, body([*start, call("w", "Write", write.input), result("w", "ok")]))
    assert [b.input["command"] for b in then.blocks if isinstance(b, ToolUseBlock)] == [command]


# -- wire shapes -------------------------------------------------------------------------


def test_stream_events_sequence_and_reassembly() -> None:
    reply = choose_reply(
        parse_script(
            {
                "steps": [
                    [
                        {"thinking": "hmm, let me see"},
                        {"text": "one two three four five"},
                        {"tool_use": {"name": "Write", "input": {"content": "x" * 200}}},
                    ]
                ]
            }
        ),
        body([first_user("go")]),
    )
    content = content_blocks(reply)
    events = list(stream_events(content, "m", "msg_1", 42))
    names = [e for e, _ in events]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    assert events[0][1]["message"]["usage"]["input_tokens"] == 42
    assert names.count("content_block_start") == names.count("content_block_stop") == 3
    deltas = [d["delta"] for e, d in events if e == "content_block_delta"]
    assert "".join(d["text"] for d in deltas if d["type"] == "text_delta") == (
        "one two three four five"
    )
    assert sum(d["type"] == "text_delta" for d in deltas) > 1  # really streamed in pieces
    assert "".join(d["thinking"] for d in deltas if d["type"] == "thinking_delta") == (
        "hmm, let me see"
    )
    raw = "".join(d["partial_json"] for d in deltas if d["type"] == "input_json_delta")
    assert json.loads(raw) == {"content": "x" * 200}
    final = events[-2][1]
    assert final["delta"]["stop_reason"] == "tool_use" and final["usage"]["output_tokens"] > 50
    frame = format_sse("message_stop", {"type": "message_stop"})
    assert frame == b'event: message_stop\ndata: {"type": "message_stop"}\n\n'


# -- the HTTP server -------------------------------------------------------------------

KEY = "k-test"


def parse_sse(text: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for frame in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in frame.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


@pytest.fixture
def server() -> Any:
    with ScriptedModelServer(SCRIPT, api_key=KEY) as s:
        yield s


def post(
    server: ScriptedModelServer, payload: Any, key: str | None = KEY, **kw: Any
) -> httpx.Response:
    headers = {"anthropic-version": "2023-06-01", **({"x-api-key": key} if key else {})}
    return httpx.post(
        f"{server.url}/v1/messages?beta=true", json=payload, headers=headers, timeout=10, **kw
    )


def test_stream_over_http(server: ScriptedModelServer) -> None:
    response = post(server, body([first_user("make a file")], stream=True))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(response.text)
    assert events[0][0] == "message_start" and events[-1][0] == "message_stop"
    usage_in = events[0][1]["message"]["usage"]["input_tokens"]
    assert usage_in > 10
    assert events[-2][1]["usage"]["output_tokens"] >= 1
    assert events[-2][1]["usage"]["input_tokens"] == usage_in
    assert events[0][1]["message"]["model"] == "claude-test"


def test_json_mode(server: ScriptedModelServer) -> None:
    response = post(server, body([first_user("make a file")], stream=False))
    message = response.json()
    assert message["type"] == "message" and message["role"] == "assistant"
    assert [b["type"] for b in message["content"]] == ["text", "tool_use"]
    assert message["content"][1]["id"].startswith("toolu_")
    assert message["stop_reason"] == "tool_use"
    assert message["usage"]["input_tokens"] > 10 and message["usage"]["output_tokens"] >= 1


@pytest.mark.parametrize("key", [None, "wrong"])
def test_bad_key_is_401_and_not_retried(server: ScriptedModelServer, key: str | None) -> None:
    response = post(server, body([first_user("x")]), key=key)
    assert response.status_code == 401
    assert response.headers["x-should-retry"] == "false"
    assert response.json() == {
        "type": "error",
        "error": {"type": "authentication_error", "message": "invalid x-api-key"},
    }


def test_any_key_when_none_configured() -> None:
    with ScriptedModelServer([], api_key=None) as s:
        assert post(s, body([first_user("x")]), key="anything").status_code == 200
        assert post(s, body([first_user("x")]), key=None).status_code == 401


@pytest.mark.parametrize(
    ("status", "kind"),
    [(429, "rate_limit_error"), (529, "overloaded_error"), (500, "api_error")],
)
def test_error_faults(status: int, kind: str) -> None:
    script = [{"match": "fail", "steps": [[{"error": status}, "never said"]]}]
    with ScriptedModelServer(script, api_key=KEY) as s:
        response = post(s, body([first_user("fail")], stream=True))
        assert response.status_code == status
        assert response.json()["type"] == "error"
        assert response.json()["error"]["type"] == kind
        assert s.message_requests[0].status == status


def test_error_fault_with_its_own_message() -> None:
    script = [{"match": "fail", "steps": [[{"error": 400, "message": "<b>bad</b> request"}]]}]
    with ScriptedModelServer(script, api_key=KEY) as s:
        response = post(s, body([first_user("fail")]))
        assert response.status_code == 400
        assert response.json()["error"] == {
            "type": "invalid_request_error",
            "message": "<b>bad</b> request",
        }


def test_fault_times_then_success() -> None:
    script = [{"steps": [[{"error": 529, "times": 2}, "finally"]]}]
    with ScriptedModelServer(script, api_key=KEY) as s:
        statuses = [post(s, body([first_user("go")])).status_code for _ in range(3)]
        assert statuses == [529, 529, 200]
        s.reset()
        assert s.requests == []
        assert post(s, body([first_user("go")])).status_code == 529


def test_broken_stream_cuts_the_body() -> None:
    script = [{"steps": [[{"broken_stream": 2}, "one two three four five six seven eight"]]}]
    with ScriptedModelServer(script, api_key=KEY) as s:
        received = b""
        with pytest.raises(httpx.RemoteProtocolError):
            with httpx.stream(
                "POST",
                f"{s.url}/v1/messages",
                json=body([first_user("go")], stream=True),
                headers={"x-api-key": KEY},
            ) as response:
                for chunk in response.iter_bytes():
                    received += chunk
        assert received.count(b"event: content_block_delta") == 2
        assert b"message_stop" not in received


def test_broken_json_response_is_a_hang_up() -> None:
    with ScriptedModelServer([{"steps": [[{"broken_stream": True}, "x"]]}], api_key=KEY) as s:
        with pytest.raises(httpx.RemoteProtocolError):
            post(s, body([first_user("go")], stream=False))
        assert s.message_requests[0].info["broken"] is True


def test_stop_does_not_wait_for_a_slow_stream() -> None:
    script = [{"steps": [[{"delay": 0.5}, " ".join(["word"] * 60)]]}]
    s = ScriptedModelServer(script, api_key=KEY).start()
    with httpx.stream(
        "POST",
        f"{s.url}/v1/messages",
        json=body([first_user("go")], stream=True),
        headers={"x-api-key": KEY},
    ) as response:
        assert response.status_code == 200
        started = time.monotonic()
        s.stop()
        assert time.monotonic() - started < 2
        with pytest.raises(httpx.TransportError):  # cut mid-body
            response.read()


def test_delay_slows_each_delta() -> None:
    script = [{"steps": [[{"delay": 0.05}, "a b c d e f g h i"]]}]  # 3 deltas
    with ScriptedModelServer(script, api_key=KEY) as s:
        started = time.monotonic()
        assert post(s, body([first_user("go")], stream=True)).status_code == 200
        assert time.monotonic() - started >= 0.15


def test_requests_are_recorded(server: ScriptedModelServer) -> None:
    post(server, body([first_user("make a file")], tools=["Bash", "Write"]))
    httpx.head(f"{server.url}/api/hello")
    (request,) = server.message_requests
    assert request.tool_names == ["Bash", "Write"]
    assert request.headers["x-api-key"] == KEY and request.prompt == "make a file"
    assert request.reply is not None and request.reply.scenario == "files"
    assert [r.method for r in server.requests] == ["POST", "HEAD"]


def test_bad_requests(server: ScriptedModelServer) -> None:
    bad = httpx.post(f"{server.url}/v1/messages", content=b"{", headers={"x-api-key": KEY})
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"
    missing = httpx.get(f"{server.url}/v1/models", headers={"x-api-key": KEY})
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found_error"
    count = httpx.post(
        f"{server.url}/v1/messages/count_tokens",
        json=body([first_user("x")]),
        headers={"x-api-key": KEY},
    )
    assert count.json()["input_tokens"] > 0


def test_add_scenarios_wins_over_existing(server: ScriptedModelServer) -> None:
    server.add_scenarios([{"match": "make a file", "steps": ["overridden"]}])
    message = post(server, body([first_user("make a file")])).json()
    assert message["content"] == [{"type": "text", "text": "overridden"}]


async def test_serves_in_the_running_loop() -> None:
    async with ScriptedModelServer(SCRIPT, api_key=KEY) as s:
        async with httpx.AsyncClient() as client:
            requests = [
                client.post(
                    f"{s.url}/v1/messages",
                    json=body([first_user(p)], stream=True),
                    headers={"x-api-key": KEY},
                )
                for p in ("make a file", "count 2", "alpha")
            ]
            responses = await asyncio.gather(*requests)
        assert [r.status_code for r in responses] == [200, 200, 200]
        texts = [parse_sse(r.text)[2][1]["delta"].get("text") for r in responses]
        assert texts == ["Writing make a ", "counting", "greek"]


def test_start_is_fast_and_stop_is_clean() -> None:
    started = time.monotonic()
    s = ScriptedModelServer([], api_key=KEY).start()
    assert time.monotonic() - started < 0.5
    assert post(s, body([first_user("x")])).status_code == 200
    s.stop()
    with pytest.raises(httpx.ConnectError):
        post(s, body([first_user("x")]))


def test_pytest_fixture(scripted_model: ScriptedModelServer) -> None:
    env = scripted_model.client_env("/cfg", "/tmp/x")
    assert env["ANTHROPIC_BASE_URL"] == scripted_model.url
    assert env["CLAUDE_CONFIG_DIR"] == "/cfg" and env["CLAUDE_CODE_MAX_RETRIES"] == "0"
    reply = post(scripted_model, body([first_user("hello")]), key=env["ANTHROPIC_API_KEY"])
    assert "scripted demo model" in reply.json()["content"][0]["text"]


def test_command_line_prints_the_url(tmp_path: Any) -> None:
    script = tmp_path / "s.json"
    script.write_text(json.dumps([{"match": "ping", "steps": ["pong"]}]))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "agcluster_jupyter.testing",
            "--script",
            str(script),
            "--api-key",
            KEY,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        message = httpx.post(
            f"{url}/v1/messages", json=body([first_user("ping")]), headers={"x-api-key": KEY}
        ).json()
        assert message["content"][0]["text"] == "pong"
    finally:
        process.terminate()
        assert process.wait(10) == 0
        process.stdout.close()  # type: ignore[union-attr]


def test_command_line_refuses_a_bad_script(tmp_path: Any) -> None:
    script = tmp_path / "bad.yaml"
    script.write_text("- {steps: [[{nope: 1}]]}\n")
    done = subprocess.run(
        [sys.executable, "-m", "agcluster_jupyter.testing", "--script", str(script)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2 and "unknown block" in done.stderr


def test_thinking_block_type() -> None:
    reply = choose_reply(
        parse_script({"steps": [[{"thinking": "t"}, "x"]]}), body([first_user("q")])
    )
    assert reply.blocks == (ThinkingBlock("t"), TextBlock("x"))
