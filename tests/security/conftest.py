"""A real ``jupyter server`` process with the extension (local provider, auth on, debug
log), the scripted model behind its gateway, and one launched session: shared by the
modules of this folder, one server per module."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agcluster_jupyter.testing.jupyter import JupyterServerProcess
from agcluster_jupyter.testing.server import ScriptedModelServer

from ..support import TEST_KEY, serving

#: a key given in one launch body only (``api_key``): it too must never be written down
SESSION_KEY = "per-session-key-5b1e0c7d9f"
#: the per-file upload limit of the server under test (small: 413s stay cheap)
UPLOAD_LIMIT = 256 * 1024


class LiveServer:
    """The server under test, with a plain (unauthenticated) httpx client around it."""

    def __init__(self, process: JupyterServerProcess, model: ScriptedModelServer) -> None:
        self.process = process
        self.model = model
        self.url = process.url
        self.base = process.base
        self.auth = process.headers

    def request(
        self, method: str, path: str, *, auth: bool = True, **kwargs: Any
    ) -> httpx.Response:
        headers = {**(self.auth if auth else {}), **kwargs.pop("headers", {})}
        kwargs.setdefault("timeout", 60)
        return httpx.request(method, self.url + path, headers=headers, **kwargs)

    def launch(self, **body: Any) -> dict[str, Any]:
        body = body or {"config_id": "code-assistant"}
        reply = self.request("POST", "agents/launch", json=body)
        assert reply.status_code == 201, reply.text
        data: dict[str, Any] = reply.json()
        return data

    def log_text(self) -> str:
        return self.process.log_path.read_text(errors="replace")


@pytest.fixture(scope="module")
def live_model() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer(api_key=[TEST_KEY, SESSION_KEY]) as model:
        yield model


@pytest.fixture(scope="module")
def live_server(live_model: ScriptedModelServer) -> Iterator[LiveServer]:
    process = JupyterServerProcess(
        live_model.url,
        TEST_KEY,
        extra_args=[
            "--ServerApp.log_level=DEBUG",
            f"--AgClusterApp.max_upload_bytes={UPLOAD_LIMIT}",
            "--AgClusterApp.cleanup_interval=3600",
        ],
    )
    # every folder the server could write to lies under its base, so a scan is complete
    for name in ("data", "runtime", "config"):
        (process.base / name).mkdir()
    process.env.update(
        JUPYTER_DATA_DIR=str(process.base / "data"),
        JUPYTER_RUNTIME_DIR=str(process.base / "runtime"),
        JUPYTER_CONFIG_DIR=str(process.base / "config"),
    )
    with serving(process):
        yield LiveServer(process, live_model)


@pytest.fixture(scope="module")
def live_session(live_server: LiveServer) -> dict[str, Any]:
    """A launched session whose workspace has a few files and links out of it."""
    session = live_server.launch(config_id="code-assistant", name="security")
    workspace = Path(session["workspace"])
    (workspace / "hello.txt").write_text("hello\n")
    (workspace / "src").mkdir()
    (workspace / "src" / "app.py").write_text("print('hi')\n")
    (workspace / "data.json").write_text(json.dumps({"a": 1}))
    os.symlink("/etc", workspace / "etc_link")
    os.symlink("/etc/passwd", workspace / "passwd")
    return session
