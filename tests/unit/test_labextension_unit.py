"""The JupyterLab extension's own tests (vitest, in labextension/), run from pytest.

Also checks that the panel's TypeScript reducer and the notebook widgets' Python
``SessionView`` agree: random event sequences (duplicates, replays, permission requests,
sub-agents, cut-off turns) are folded by both and the results compared.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agcluster_jupyter._version import __version__
from agcluster_jupyter.events import parse_event
from agcluster_jupyter.kernel.widgets.state import SessionView, ToolCall

ROOT = Path(__file__).resolve().parents[2]
LABEXT = ROOT / "labextension"
#: the Node.js the builder (rspack) and vitest need
NODE_MIN = (20, 19)
#: the dev tools the tests below run (an older node_modules lacking one is installed again)
NPM_TOOLS = ("vitest", "tsc", "prettier", "eslint", "openapi-typescript", "madge")


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} not found on PATH: the labextension's tests need Node.js "
            f">= {NODE_MIN[0]}.{NODE_MIN[1]} and npm (apt-get install nodejs npm, or nodejs.org)",
            pytrace=False,
        )
    return path


def npm(*args: str) -> list[str]:
    """The command line of ``npm ARGS`` (run it in labextension/ with ``npm_env()``)."""
    return [_tool("npm"), *args]


def npm_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {**os.environ, "CI": "1", "NO_COLOR": "1", **(extra or {})}


def _npm(*args: str, env: dict[str, str] | None = None, timeout: float = 280) -> str:
    proc = subprocess.run(
        npm(*args), cwd=LABEXT, env=npm_env(env), capture_output=True, text=True, timeout=timeout
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"npm {' '.join(args)} failed ({proc.returncode}):\n{output}"
    return output


def ensure_node_modules() -> Path:
    """labextension/node_modules, installed from the lock file when missing."""
    version = subprocess.run(
        [_tool("node"), "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    found = tuple(int(p) for p in version.lstrip("v").split(".")[:2])
    assert found >= NODE_MIN, f"Node.js {version} is too old; the labextension needs >= 20.19"
    modules = LABEXT / "node_modules"
    if not all((modules / ".bin" / tool).exists() for tool in NPM_TOOLS):
        _npm("ci", "--no-audit", "--no-fund")
    return modules


@pytest.fixture(scope="module")
def node_modules() -> Path:
    return ensure_node_modules()


# -- the same events through Python and TypeScript ---------------------------------------


def _call(call: ToolCall) -> dict[str, Any]:
    return {
        "id": call.tool_use_id,
        "name": call.name,
        "status": call.status,
        "output": call.output,
        "notes": call.notes,
        "duration": call.duration_s,
        "summary": call.summary,
        "children": [_call(c) for c in call.children],
    }


def _snapshot(view: SessionView, applied: int) -> dict[str, Any]:
    return {
        "applied": applied,
        "session_id": view.session_id,
        "last_seq": view.last_seq,
        "state": view.state,
        "detail": view.detail,
        "busy": view.busy,
        "turns": view.turns,
        "cost_usd": view.cost_usd,
        "input_tokens": view.input_tokens,
        "output_tokens": view.output_tokens,
        "entries": [[e.role, e.text, e.streaming] for e in view.entries],
        "timeline": [_call(c) for c in view.timeline],
        "todos": [[t.content, t.status, t.activeForm] for t in view.todos],
        "permissions": [[p.request_id, p.tool_name, p.summary] for p in view.permissions.values()],
        "running": sorted(c.tool_use_id for c in view.running_calls()),
        "markdown": view.markdown(),
    }


def _random_log(rng: random.Random) -> list[dict[str, Any]]:
    """A plausible session log: turns of text, tool calls (some in sub-agents), tasks,
    permission requests, results, errors; ids unique per call, as the SDK makes them."""
    specs: list[dict[str, Any]] = []
    calls: list[str] = []
    words = ["alpha", "beta", "é", "🙂", "x\ny", "  spaced  out  "]
    for _ in range(rng.randint(1, 45)):
        kind = rng.choice(
            ["status", "delta", "delta", "message", "user", "tool_use", "tool_use", "result",
             "tool_result", "tool_result", "todo", "permission", "answer", "cost", "error", "done",
             "sub_message", "sub_delta", "thinking"]
        )  # fmt: skip
        parent = rng.choice(calls) if calls and rng.random() < 0.4 else None
        if kind == "status":
            state = rng.choice(["busy", "idle", "ready", "stopped", "failed", "starting"])
            specs.append({"type": "status", "state": state, "detail": rng.choice(["", "why"])})
        elif kind == "delta":
            specs.append({"type": "text_delta", "text": rng.choice(words)})
        elif kind == "sub_delta" and parent:
            specs.append({"type": "text_delta", "text": "sub", "parent_tool_use_id": parent})
        elif kind == "message":
            specs.append({"type": "message", "role": "assistant", "text": rng.choice(words)})
        elif kind == "sub_message" and parent:
            role = rng.choice(["assistant", "user"])
            specs.append(
                {"type": "message", "role": role, "text": "n", "parent_tool_use_id": parent}
            )
        elif kind == "user":
            specs.append({"type": "message", "role": "user", "text": rng.choice(words)})
        elif kind == "tool_use":
            tid = f"toolu_{len(specs)}"
            name = rng.choice(["Bash", "Agent", "Task", "Write", "Read"])
            tool_input = rng.choice(
                [{"command": "ls  -la\n /tmp"}, {"file_path": "/w/a.py", "content": "x"},
                 {"file_path": "/workspace/src/a.py"}, {"path": "/srv/ws/s1/data"},
                 {"b": [1, {"d": "é", "c": None}], "a": True}, {}, {"prompt": "p" * 120}]
            )  # fmt: skip
            specs.append({"type": "tool_use", "tool_use_id": tid, "name": name,
                          "input": tool_input, "parent_tool_use_id": parent})  # fmt: skip
            calls.append(tid)
        elif kind == "tool_result" and calls:
            tid = rng.choice([*calls, "toolu_unknown"])
            specs.append({"type": "tool_result", "tool_use_id": tid,
                          "is_error": rng.random() < 0.3, "output": rng.choice(words)})  # fmt: skip
        elif kind == "permission":
            rid = rng.choice([*calls, f"toolu_{len(specs) + 1}", "req-x"])
            specs.append({"type": "permission_request", "request_id": rid, "tool_name": "Bash",
                          "input": {"command": "rm -rf x"}})  # fmt: skip
        elif kind == "answer":
            rid = rng.choice([*calls, "req-x"])
            reason = rng.choice(["user", "timeout"])
            specs.append({"type": "permission_answer", "request_id": rid,
                          "decision": "allow" if reason == "user" else "deny",
                          "answered_by": "ann" if reason == "user" else "timeout",
                          "reason": reason,
                          "message": rng.choice(["", "Bash: no answer"])})  # fmt: skip
        elif kind == "todo":
            todos = [{"content": f"task {i}", "status": rng.choice(
                ["pending", "in_progress", "completed"]), "activeForm": f"doing {i}"}
                for i in range(rng.randint(0, 3))]  # fmt: skip
            specs.append({"type": "todo_update", "todos": todos})
        elif kind == "result":
            result: dict[str, Any] = {
                "type": "result",
                "usage": {
                    "input_tokens": rng.randint(0, 50),
                    "output_tokens": rng.randint(0, 9),
                    "cache_read_input_tokens": rng.randint(0, 5),
                },  # fmt: skip
                "num_turns": 1,
            }
            if rng.random() < 0.5:
                result["session_usage"] = {"input_tokens": rng.randint(0, 999),
                                           "output_tokens": rng.randint(0, 99)}  # fmt: skip
            specs.append(result)
        elif kind == "cost":
            specs.append({"type": "result", "cost_usd": rng.choice([0.0125, 0.1, None, 0])})
        elif kind == "error":
            specs.append({"type": "error", "message": "boom", "code": rng.choice(["error", "x"])})
        elif kind == "done":
            specs.append({"type": "done"})
        elif kind == "thinking":
            specs.append({"type": "thinking", "text": "hmm"})
    log = []
    for seq, spec in enumerate(specs, start=1):
        stamped = {"seq": seq, "session_id": "s1", "ts": f"2026-11-26T10:{seq // 60:02d}:"
                   f"{seq % 60:02d}.{rng.randint(0, 999):03d}+00:00", **spec}  # fmt: skip
        log.append(parse_event(stamped).model_dump(mode="json"))
    return log


def _delivery(rng: random.Random, log: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The log as a client may receive it: overlapping reconnects, whole replays, doubles."""
    out: list[dict[str, Any]] = []
    i = 0
    while i < len(log):
        step = rng.randint(1, 6)
        out.extend(log[i : i + step])
        i += step
        if rng.random() < 0.3:
            back = rng.randint(0, i)
            out.extend(log[back:i])  # a reconnect that overlaps
    if rng.random() < 0.3:
        out.extend(log)  # the whole log again
    return out


def parity_cases(count: int = 150, seed: int = 20261126) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    cases = []
    for n in range(count):
        events = _delivery(rng, _random_log(rng))
        view = SessionView()
        applied = view.extend([parse_event(e) for e in events])
        cases.append({"name": f"case {n}", "events": events, "expected": _snapshot(view, applied)})
    return cases


# -- the tests -------------------------------------------------------------------------------


def test_vitest_suite_and_reducer_parity_with_python(node_modules: Path, tmp_path: Path) -> None:
    cases = tmp_path / "parity.json"
    cases.write_text(json.dumps(parity_cases(), ensure_ascii=False))
    report = tmp_path / "vitest.json"
    output = _npm(
        "test",
        "--",
        "--reporter=default",
        "--reporter=json",
        f"--outputFile.json={report}",
        env={"AGC_PARITY_FILE": str(cases)},
    )
    results = json.loads(report.read_text())
    assert results["success"] and results["numFailedTests"] == 0, output
    tests = [t for f in results["testResults"] for t in f["assertionResults"]]
    parity = [t for t in tests if "parity with Python: 150 cases" in t["ancestorTitles"]]
    assert len(parity) == 150 and all(t["status"] == "passed" for t in parity), output
    # the reducer's, the SSE client's and the panel's (jsdom) own cases ran too
    ran = {Path(f["name"]).name for f in results["testResults"] if f["status"] == "passed"}
    assert {"reducer.test.ts", "sse.test.ts", "parity.test.ts", "panel.test.tsx"} <= ran, ran
    assert len(tests) - len(parity) >= 25, output
    # only the live case waits for a server (tests/integration/test_labextension_live.py)
    skipped = {Path(f["name"]).name for f in results["testResults"] if f["status"] != "passed"}
    assert skipped <= {"live.test.ts"}, output


def test_typescript_strict_typecheck_and_prettier(node_modules: Path) -> None:
    _npm("run", "typecheck")
    _npm("run", "lint:check")


def test_eslint_with_the_extension_template_config(node_modules: Path) -> None:
    """labextension/eslint.config.mjs: the JupyterLab extension template's rules, no
    warnings allowed (``npm run eslint`` fixes what it can)."""
    _npm("run", "eslint:check")


def test_rest_types_are_what_the_openapi_spec_generates(node_modules: Path) -> None:
    """src/schema.ts, which api.ts builds on, is checked in: after a change to
    agcluster_jupyter/openapi.yaml, ``npm run gen:rest`` writes it again."""
    output = _npm("run", "check:rest")
    assert "matches agcluster_jupyter/openapi.yaml" in output, output


def test_no_import_cycles_between_the_panel_modules(node_modules: Path) -> None:
    output = _npm("run", "check:cycles")
    assert "No circular dependency found" in output, output


def test_package_version_is_the_python_version() -> None:
    package = json.loads((LABEXT / "package.json").read_text())
    assert package["name"] == "agcluster-jupyter"
    assert package["version"] == __version__


def test_jupyterlab_lists_the_extension_enabled() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "jupyter", "labextension", "list"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_COLOR": "1"},
    )
    listing = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)
    assert re.search(rf"agcluster-jupyter v{re.escape(__version__)} enabled\s+OK", listing), listing


if __name__ == "__main__":
    # refresh the sample `npm test` uses on its own: python -m tests.unit.test_labextension_unit
    sample = LABEXT / "test" / "fixtures" / "parity.json"
    sample.write_text(json.dumps(parity_cases(count=25, seed=7), ensure_ascii=False))
    print(f"wrote {sample}")
