"""The README's "Quick start with curl", against the server ``./run.sh`` starts.

``./run.sh`` without ``ANTHROPIC_API_KEY`` starts JupyterLab in demo mode and prints the
API URL and token to paste; the README's requests, in its order and with its bodies (read
from the README), then work: the demo model writes ``fib.py`` and runs it, so
``files/$SID/fib.py`` is there, and any "create NAME.sh and run it" works the same way.

run.sh runs as it is, with a stand-in venv whose ``pip`` does nothing (the packages are
installed here already) and whose ``jupyter`` is this environment's.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from agcluster_jupyter.testing.jupyter import agent_folders, free_port

from ..support import parse_sse, runner_pids

pytestmark = pytest.mark.cli

REPO = Path(__file__).resolve().parents[2]
TURN_TIMEOUT = 120.0


def readme_curl_section() -> str:
    text = (REPO / "README.md").read_text()
    section = text.split("## Quick start with curl", 1)[1].split("\n## ", 1)[0]
    [block] = re.findall(r"```bash\n(.*?)```", section, re.DOTALL)
    return str(block)


def readme_bodies() -> list[dict[str, Any]]:
    """The JSON bodies of the README's curl requests (``-d '...'``), in order."""
    return [json.loads(b) for b in re.findall(r"-d '(\{.*?\})'", readme_curl_section())]


@dataclass
class Started:
    api: str
    headers: dict[str, str]
    proc: subprocess.Popen[str]
    base: Path
    printed: list[str]


def stand_in_venv(folder: Path) -> Path:
    """``$VENV`` for run.sh: pip does nothing, python and jupyter are this environment's."""
    bin_dir = folder / "bin"
    bin_dir.mkdir(parents=True)
    real = Path(sys.executable).parent
    scripts = {
        "pip": "exit 0",
        "python": f'exec {shlex.quote(sys.executable)} "$@"',
        "jupyter": f'exec {shlex.quote(str(real / "jupyter"))} "$@"',
    }
    for name, body in scripts.items():
        path = bin_dir / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)
    return folder


@pytest.fixture(scope="module")
def run_sh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Started]:
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="agc-runsh-", dir="/tmp"))
    folders = agent_folders(base)
    root = base / "root"
    root.mkdir()
    home = tmp_path_factory.mktemp("jupyter-home")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ANTHROPIC_", "JUPYTER_", "JUPYTERHUB_"))
    }
    env.update(
        VENV=str(stand_in_venv(tmp_path_factory.mktemp("venv"))),
        JUPYTER_PORT=str(free_port()),
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_DATA_DIR=str(home / "data"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        JUPYTER_PLATFORM_DIRS="1",
    )
    args = [
        f"--ServerApp.root_dir={root}",
        "--AgClusterApp.provider=local",
        *(f"--AgClusterApp.{trait}={path}" for trait, path in folders.items()),
    ]
    log = (base / "jupyter.log").open("w")
    proc = subprocess.Popen(
        ["bash", str(REPO / "run.sh"), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        start_new_session=True,
    )
    printed: list[str] = []
    stdout = proc.stdout
    assert stdout is not None
    reader = threading.Thread(target=lambda: printed.extend(line.rstrip("\n") for line in stdout))
    reader.start()
    deadline = time.monotonic() + 60
    while not any("export API=" in line for line in printed):
        if proc.poll() is not None or time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            raise AssertionError(f"run.sh printed no API line for curl: {printed}")
        time.sleep(0.05)
    [export] = [line for line in printed if "export API=" in line]
    exports = dict(word.split("=", 1) for word in shlex.split(export.split("export", 1)[1]))
    api = exports["API"].rstrip("/") + "/"
    scheme, _, token = exports["AUTH"].removeprefix("Authorization: ").partition(" ")
    started = Started(api, {"Authorization": f"{scheme} {token}"}, proc, base, printed)
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(api + "health", headers=started.headers, timeout=5).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            log.flush()
            tail = (base / "jupyter.log").read_text()[-3000:]
            raise AssertionError(f"run.sh's server did not start: {tail}")
        time.sleep(0.2)
    try:
        yield started
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        log.close()
        reader.join(10)
        stdout.close()
        leaked = runner_pids(under=str(base))
        for pid in leaked:
            os.kill(pid, signal.SIGKILL)
        assert not leaked, f"runner processes outlived the server: {sorted(leaked)}"


def call(
    started: Started, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: Any
) -> httpx.Response:
    headers = {**started.headers, **(headers or {})}
    return httpx.request(
        method, started.api + path, headers=headers, timeout=TURN_TIMEOUT, **kwargs
    )


def chat(started: Started, session_id: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    response = call(
        started,
        "POST",
        f"agents/{session_id}/chat",
        json=body,
        headers={"Accept": "text/event-stream"},
    )
    assert response.status_code == 200, response.text
    events = parse_sse(response.text)
    assert events[-1]["type"] == "done"
    return events


def said(events: list[dict[str, Any]]) -> str:
    return "\n".join(
        e["text"] for e in events if e["type"] == "message" and e.get("role") == "assistant"
    )


def test_run_sh_prints_where_its_api_is(run_sh: Started) -> None:
    assert "DEMO MODE" in run_sh.printed[0]
    [api_line] = [line for line in run_sh.printed if line.startswith("agcluster API:")]
    token = run_sh.headers["Authorization"].split()[1]
    assert api_line == f"agcluster API: {run_sh.api}  token: {token}"
    assert len(token) >= 32
    # the README tells the reader to paste that line
    assert "export API=" in readme_curl_section() and "./run.sh" in readme_curl_section()
    # and it is the server's own token: without it, no access
    assert httpx.get(run_sh.api + "health", timeout=10).status_code == 403


def test_the_readme_curl_example_in_demo_mode(run_sh: Started) -> None:
    launch_body, chat_body = readme_bodies()
    health = call(run_sh, "GET", "health").json()
    assert health["demo_mode"] is True and health["provider"] == "local"
    configs = call(run_sh, "GET", "configs/").json()
    assert launch_body["config_id"] in json.dumps(configs)
    launched = call(run_sh, "POST", "agents/launch", json=launch_body)
    assert launched.status_code == 201, launched.text
    sid = launched.json()["session_id"]
    try:
        assert chat_body["message"].startswith("Write fib.py")
        events = chat(run_sh, sid, chat_body)
        assert not [e for e in events if e["type"] == "error"], events
        runs = [e for e in events if e["type"] == "tool_result" and not e["is_error"]]
        assert any("0 1 1 2 3 5 8 13 21 34" in e["output"] for e in runs), runs
        reply = said(events)
        assert "0 1 1 2 3 5 8 13 21 34" in reply and "scripted demo model" in reply, reply

        tree = call(run_sh, "GET", f"files/{sid}").json()
        assert "fib.py" in json.dumps(tree)
        preview = call(run_sh, "GET", f"files/{sid}/fib.py")
        assert preview.status_code == 200, preview.text
        assert preview.json()["language"] == "python"
        assert "fibonacci" in preview.json()["content"].lower()
        zipped = call(run_sh, "GET", f"files/{sid}/download")
        assert zipped.status_code == 200 and zipped.content[:2] == b"PK"
        export = call(run_sh, "GET", f"agents/{sid}/export", params={"format": "md"})
        assert export.status_code == 200 and "fib.py" in export.text

        # any "create NAME and run it", in the same session
        events = chat(run_sh, sid, {"message": "Now create hello.sh and run it"})
        runs = [e for e in events if e["type"] == "tool_result" and not e["is_error"]]
        assert any("Hello from hello.sh!" in e["output"] for e in runs), runs
        assert "Hello from hello.sh!" in said(events)
        script = call(run_sh, "GET", f"files/{sid}/hello.sh")
        assert script.status_code == 200 and "echo" in script.json()["content"]
    finally:
        stopped = call(run_sh, "DELETE", f"agents/sessions/{sid}", params={"purge": "true"})
        assert stopped.status_code == 200, stopped.text
