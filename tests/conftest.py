"""Shared fixtures: a real Jupyter server with the extension, auth on, local provider,
and the scripted model as the gateway's upstream."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .packaging_support import Dists, build_dists
from .support import TEST_KEY, in_process_settings, runner_pids

# the scripted_model fixture (no pytest11 entry point: the wheel loads nothing into
# other pytest runs); pytest takes pytest_plugins from this top-level conftest only
pytest_plugins = ["pytest_jupyter.jupyter_server", "agcluster_jupyter.testing.pytest_plugin"]


@pytest.fixture
async def jp_asyncio_loop() -> AsyncIterator[asyncio.AbstractEventLoop]:
    """Serve on the loop pytest-asyncio runs the tests on.

    pytest-jupyter's own fixture makes a second loop: the server would listen there while
    the test awaits on pytest-asyncio's, and every request would hang.
    """
    yield asyncio.get_running_loop()


@pytest.fixture
def agent_dirs() -> Iterator[dict[str, Path]]:
    """Workspace and agent-state roots the unprivileged agent user can reach.

    pytest's tmp_path lives under a 0700 folder; the CLI runs as ``nobody`` when the tests
    run as root, so these go in a world-traversable folder under /tmp instead.
    """
    base = Path(tempfile.mkdtemp(prefix="agc-test-", dir="/tmp"))
    base.chmod(0o755)
    dirs = {
        "base": base,
        "workspaces": base / "workspaces",
        "agent_state": base / "agent-state",
        "sockets": base / "s",
        "state": base / "state",
    }
    for path in dirs.values():
        path.mkdir(exist_ok=True)
        path.chmod(0o755)
    yield dirs
    leaked = runner_pids(under=str(base))
    for pid in leaked:
        os.kill(pid, signal.SIGKILL)
    shutil.rmtree(base, ignore_errors=True)
    assert not leaked, f"runner processes outlived the test: {sorted(leaked)}"


@pytest.fixture
def agcluster_config() -> dict[str, Any]:
    """Extra AgClusterApp settings a test module may override."""
    return {}


@pytest.fixture
def server_key(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str | None:
    """The server's own key, as an operator sets it (environment only); none with the
    ``no_server_key`` marker."""
    if request.node.get_closest_marker("no_server_key"):
        monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
        return None
    monkeypatch.setenv("ANTHROPIC_API_KEY", TEST_KEY)
    return TEST_KEY


@pytest.fixture
def jp_server_config(
    scripted_model: Any,
    agent_dirs: dict[str, Path],
    agcluster_config: dict[str, Any],
    server_key: str | None,
) -> dict[str, Any]:
    app: dict[str, Any] = {
        "provider": "local",
        "anthropic_base_url": scripted_model.url,
        "workspace_root": str(agent_dirs["workspaces"]),
        "agent_state_root": str(agent_dirs["agent_state"]),
        "socket_root": str(agent_dirs["sockets"]),
        "state_root": str(agent_dirs["state"]),
        "cleanup_interval": 3600.0,
    }
    app.update(agcluster_config)
    return {
        "ServerApp": {
            "jpserver_extensions": {
                "agcluster_jupyter": True,
                "jupyter_server_terminals": False,
            },
            "allow_root": True,
            "allow_unauthenticated_access": False,
        },
        "AgClusterApp": app,
    }


Fetch = Callable[..., Awaitable[Any]]


@pytest.fixture
async def agcluster_app(jp_serverapp: Any, agent_dirs: dict[str, Path]) -> AsyncIterator[Any]:
    """The extension app; its shutdown runs (and is awaited) before the folders go.

    pytest-jupyter's own cleanup cannot run on a loop that is already running, so it
    only schedules it; this awaits the extension's stop explicitly.
    """
    (app,) = jp_serverapp.extension_manager.extension_apps["agcluster_jupyter"]
    yield app
    await app.stop_extension()


@pytest.fixture
def api(jp_fetch: Fetch, agcluster_app: Any) -> Fetch:
    """``await api("agents/launch", method="POST", body={...})`` → parsed JSON (or raises)."""

    async def call(
        path: str, *, method: str = "GET", body: Any = None, raw: bool = False, **kwargs: Any
    ) -> Any:
        if body is not None and not isinstance(body, (str, bytes)):
            body = json.dumps(body)
        response = await jp_fetch(
            "api", "agcluster", *path.split("/"), method=method, body=body, **kwargs
        )
        if raw:
            return response
        text = response.body.decode()
        if text and response.headers.get("Content-Type", "").startswith("application/json"):
            try:
                return json.loads(text)
            except ValueError:
                raise AssertionError(
                    f"{path}: not JSON ({response.headers.get('Content-Type')}): {text[:500]!r}"
                ) from None
        return text

    return call


@pytest.fixture
async def launched(api: Fetch) -> AsyncIterator[Callable[..., Awaitable[dict[str, Any]]]]:
    """Launch sessions; every one is purged at the end so no runner outlives the test."""
    ids: list[str] = []

    async def launch(config_id: str = "code-assistant", **body: Any) -> dict[str, Any]:
        payload = {"config_id": config_id, **body} if "config" not in body else body
        reply: dict[str, Any] = await api("agents/launch", method="POST", body=payload)
        ids.append(reply["session_id"])
        return reply

    yield launch
    for session_id in ids:
        try:
            await api(f"agents/sessions/{session_id}", method="DELETE", params={"purge": "true"})
        except Exception:  # noqa: BLE001 - already gone is fine
            pass


@pytest.fixture
def no_server_env(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    scripted_model: Any,
    agent_dirs: dict[str, Path],
) -> Iterator[Path]:
    """A kernel with no Jupyter server to find: no server variables, an empty runtime dir,
    and the agcluster settings in a Jupyter config file (as a user would keep them)."""
    for name in ("JUPYTER_SERVER_URL", "JUPYTER_TOKEN", "JUPYTER_SERVER_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name in list(os.environ):
        if name.startswith("JUPYTERHUB_"):
            monkeypatch.delenv(name)
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))
    config = tmp_path / "config"
    config.mkdir()
    settings = {"AgClusterApp": in_process_settings(scripted_model.url, agent_dirs)}
    (config / "jupyter_server_config.json").write_text(json.dumps(settings))
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(config))
    monkeypatch.setenv("ANTHROPIC_API_KEY", TEST_KEY)
    yield config
    from agcluster_jupyter.kernel.inprocess import default_server

    server = default_server()
    if server is not None:
        server.stop()


@pytest.fixture(scope="session")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Dists:
    """The checkout's sdist and wheel, built once per test session (tests/packaging_support)."""
    return build_dists(tmp_path_factory.mktemp("dist"))
