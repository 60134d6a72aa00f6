"""Helpers shared by the test modules."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
import os
import shutil
import stat
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError

from agcluster_jupyter.testing.jupyter import JupyterServerProcess, descendants, runner_pids

__all__ = [
    "CAREFUL",
    "TEST_KEY",
    "assert_gapless",
    "bash_scenario",
    "chat_sse",
    "descendants",
    "event_log",
    "expect_error",
    "next_permission_request",
    "parse_sse",
    "runner_pids",
    "serving",
    "wait_until",
]

#: an inline config that asks before every tool call (permission requests to answer)
CAREFUL = {
    "id": "careful",
    "allowed_tools": ["Bash", "Read"],
    "permission_mode": "default",
    "system_prompt": "Ask before running commands.",
}
#: the key the gateway adds upstream; the scripted model accepts only this one
TEST_KEY = "scripted-model-test-key"


def parse_sse(text: str) -> list[dict[str, Any]]:
    """The events of an SSE body (heartbeat comments skipped), checking the framing."""
    events = []
    for frame in text.split("\n\n"):
        lines = [line for line in frame.split("\n") if line and not line.startswith(":")]
        if not lines:
            continue
        fields = dict(line.split(": ", 1) for line in lines)
        data = json.loads(fields["data"])
        assert fields["event"] == data["type"]
        assert int(fields["id"]) == data["seq"]
        events.append(data)
    return events


async def wait_until(check: Callable[[], Any], timeout: float = 30.0, what: str = "") -> Any:
    """Poll ``check`` (sync, or returning an awaitable) until it gives something truthy;
    that value, or an AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what or check}")


async def event_log(api: Any, session_id: str) -> list[dict[str, Any]]:
    """The session's whole event log, as a late subscriber gets it."""
    return parse_sse(await api(f"agents/{session_id}/events", params={"follow": "false"}))


def assert_gapless(events: list[dict[str, Any]], first: int = 1) -> None:
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(first, first + len(seqs))), f"seq not gapless: {seqs}"


async def chat_sse(api: Any, session_id: str, message: str, **kwargs: Any) -> list[dict[str, Any]]:
    text = await api(
        f"agents/{session_id}/chat",
        method="POST",
        body={"message": message},
        headers={"Accept": "text/event-stream"},
        request_timeout=120,
        **kwargs,
    )
    return parse_sse(text)


async def next_permission_request(
    api: Any, session_id: str, turn: Any = None, *, answered: set[str] | None = None
) -> dict[str, Any]:
    """The session's first permission request not in ``answered``, once it is logged
    (polling its event log; ``turn``, the running chat, must not end first)."""
    for _ in range(600):
        log = parse_sse(await api(f"agents/{session_id}/events", params={"follow": "false"}))
        done = {e["request_id"] for e in log if e["type"] == "permission_answer"}
        done |= answered or set()
        for event in log:
            if event["type"] == "permission_request" and event["request_id"] not in done:
                return event
        assert turn is None or not turn.done(), "the turn ended without a permission request"
        await asyncio.sleep(0.1)
    raise AssertionError("no permission request")


async def expect_error(coro: Any, status: int) -> dict[str, Any]:
    with pytest.raises(HTTPClientError) as info:
        await coro
    assert info.value.code == status, info.value.response.body if info.value.response else ""
    assert info.value.response is not None
    body: dict[str, Any] = json.loads(info.value.response.body)
    assert body["message"] and "Traceback" not in body["message"]
    return body


def bash_scenario(match: str, command: str) -> dict[str, Any]:
    """A scripted-model scenario whose one step runs ``command`` with Bash."""
    return {
        "match": match,
        "steps": [[{"tool_use": {"name": "Bash", "input": {"command": command}}}]],
    }


def python_for_others() -> str:
    """A Python a normal user can run, with this environment's packages.

    Ours may not be one (here: pyenv under /root, mode 0700).  Then: the system's Python of
    the same minor version, in a venv of its own whose ``.pth`` file adds our
    site-packages (readable by all), made once per machine and site-packages."""
    if _reachable(Path(os.path.realpath(sys.executable))):
        return sys.executable
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    system = shutil.which(f"python{version}", path="/usr/local/bin:/usr/bin:/bin")
    if system is None:
        pytest.fail(f"no python{version} a normal user can run (apt-get install python3)")
    purelib = sysconfig.get_paths()["purelib"]
    digest = hashlib.sha256(purelib.encode()).hexdigest()[:12]
    target = Path(tempfile.gettempdir()) / f"agc-python-{version}-{digest}"
    python = target / "bin" / "python"
    if not python.exists():
        subprocess.run([system, "-m", "venv", "--without-pip", str(target)], check=True)
        (site_dir,) = target.glob("lib/python*/site-packages")
        # addsitedir, not a bare path: the .pth files in there (an editable install's)
        # count too
        line = f"import site; site.addsitedir({purelib!r})\n"
        (site_dir / "agcluster-shared.pth").write_text(line)
        for path in [target, *target.rglob("*")]:
            if not path.is_symlink():
                path.chmod(0o755 if path.is_dir() or os.access(path, os.X_OK) else 0o644)
    return str(python)


def _reachable(path: Path) -> bool:
    """Can a user who is not the owner (nor in its group) run ``path``?"""
    try:
        if not path.stat().st_mode & stat.S_IXOTH:
            return False
        return all(parent.stat().st_mode & stat.S_IXOTH for parent in path.parents)
    except OSError:
        return False


def in_process_settings(model_url: str, dirs: dict[str, Path]) -> dict[str, Any]:
    """AgClusterApp settings of an in-process server for tests (local provider)."""
    return {
        "provider": "local",
        "anthropic_base_url": model_url,
        # world-traversable: as root the CLI runs as nobody
        "workspace_root": str(dirs["workspaces"]),
        "agent_state_root": str(dirs["agent_state"]),
    }


@contextmanager
def serving(server: JupyterServerProcess) -> Iterator[JupyterServerProcess]:
    """Start ``server`` (a failed start fails the test), yield it, stop it, and assert
    that nothing it started outlived it; its folders are removed either way."""
    try:
        server.start()
    except RuntimeError as exc:
        shutil.rmtree(server.base, ignore_errors=True)
        pytest.fail(str(exc))
    try:
        yield server
    finally:
        leaked = server.stop() + sorted(runner_pids(str(server.base)))
        shutil.rmtree(server.base, ignore_errors=True)
    assert not leaked, f"processes outlived the server: {leaked}"
