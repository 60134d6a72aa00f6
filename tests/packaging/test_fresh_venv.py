"""The README's install line, from the built wheel, in a fresh venv with no Node on PATH.

``pip install 'agcluster-jupyter[lab]'``, then ``jupyter lab``: one venv for the session
(``fresh_venv``), built from the checkout's wheel (``dists``, tests/conftest.py).  pip
uses its cache and the configured indexes; PyPI unreachable is a skip on a developer's
machine and a failure under ``CI``.  About 30 s with a warm cache.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from ..packaging_support import Dists, offline_skip_or_fail

pytestmark = pytest.mark.packaging

ANSI = re.compile(r"\x1b\[[0-9;]*m")
NODE_TOOLS = ("node", "npm", "npx")
#: what the fresh environment must not inherit from this one
INHERITED = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "ANTHROPIC_", "JUPYTER", "CONDA_")


@dataclass(frozen=True)
class FreshVenv:
    root: Path
    venv: Path
    env: dict[str, str]
    version: str

    def run(self, *cmd: str, timeout: float = 120) -> str:
        """Run ``cmd`` (found on the venv's PATH); its stdout and stderr, colours stripped."""
        exe = shutil.which(cmd[0], path=self.env["PATH"])
        assert exe is not None, f"{cmd[0]} is not on the fresh venv's PATH"
        proc = subprocess.run(
            [exe, *cmd[1:]],
            env=self.env,
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        output = ANSI.sub("", proc.stdout + proc.stderr)
        assert proc.returncode == 0, f"{' '.join(cmd)} exited {proc.returncode}:\n{output}"
        return output


def _path_without_node() -> str:
    """This PATH less every folder holding node, npm or npx (on Debian: /usr/bin, /bin)."""
    keep = [
        folder
        for folder in os.environ.get("PATH", "").split(os.pathsep)
        if folder and not any((Path(folder) / tool).exists() for tool in NODE_TOOLS)
    ]
    return os.pathsep.join(keep)


def _fresh_env(root: Path, venv: Path) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith(INHERITED)}
    env["PATH"] = os.pathsep.join([str(venv / "bin"), _path_without_node()])
    env["VIRTUAL_ENV"] = str(venv)
    # Jupyter's per-user folders in the test's own tree (the system-wide ones stay)
    for name, folder in (
        ("JUPYTER_CONFIG_DIR", "config"),
        ("JUPYTER_DATA_DIR", "data"),
        ("JUPYTER_RUNTIME_DIR", "runtime"),
    ):
        env[name] = str(root / folder)
    env["JUPYTER_PLATFORM_DIRS"] = "1"  # no "migrating its paths" warning
    return env


@pytest.fixture(scope="session")
def fresh_venv(dists: Dists, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FreshVenv]:
    """The venv (about 1 GB: the claude CLI, JupyterLab) is removed after the session."""
    root = tmp_path_factory.mktemp("fresh-venv")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    env = _fresh_env(root, venv)
    for tool in NODE_TOOLS:
        assert shutil.which(tool, path=env["PATH"]) is None, f"{tool} is on the test's PATH"
    started = time.monotonic()
    cmd = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", f"{dists.wheel}[lab]"]
    proc = subprocess.run(cmd, env=env, cwd=root, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        shutil.rmtree(venv, ignore_errors=True)
        offline_skip_or_fail(f"pip install '{dists.wheel.name}[lab]'", proc.stdout + proc.stderr)
    print(f"fresh venv: pip install '<wheel>[lab]' took {time.monotonic() - started:.1f} s")
    version = dists.wheel.name.split("-")[1]
    yield FreshVenv(root=root, venv=venv, env=env, version=version)
    shutil.rmtree(venv, ignore_errors=True)


def test_jupyter_is_the_fresh_venvs(fresh_venv: FreshVenv) -> None:
    assert shutil.which("jupyter", path=fresh_venv.env["PATH"]) == str(
        fresh_venv.venv / "bin" / "jupyter"
    )


def test_the_labextension_is_enabled_without_node(fresh_venv: FreshVenv) -> None:
    """The prebuilt labextension ships in the wheel: JupyterLab finds it, no build."""
    output = fresh_venv.run("jupyter", "labextension", "list")
    line = rf"^\s*agcluster-jupyter v{re.escape(fresh_venv.version)} enabled OK\b"
    assert re.search(line, output, re.MULTILINE), output


def test_the_server_extension_is_enabled(fresh_venv: FreshVenv) -> None:
    output = fresh_venv.run("jupyter", "server", "extension", "list")
    assert re.search(r"^\s*agcluster_jupyter enabled\b", output, re.MULTILINE), output
    ok = rf"^\s*agcluster_jupyter {re.escape(fresh_venv.version)} OK\b"
    assert re.search(ok, output, re.MULTILINE), output


def test_the_kernel_side_imports(fresh_venv: FreshVenv) -> None:
    """The %%agent magic needs ipykernel next to the package and JupyterLab."""
    fresh_venv.run("python", "-c", "import agcluster_jupyter, ipykernel, jupyterlab")


class _PageConfig(HTMLParser):
    """The JSON of JupyterLab's ``<script id="jupyter-config-data">``."""

    def __init__(self) -> None:
        super().__init__()
        self._inside = False
        self.text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._inside = tag == "script" and ("id", "jupyter-config-data") in attrs

    def handle_endtag(self, tag: str) -> None:
        self._inside = False

    def handle_data(self, data: str) -> None:
        if self._inside:
            self.text += data


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def lab(fresh_venv: FreshVenv) -> Iterator[tuple[str, str]]:
    """``jupyter lab`` from the fresh venv: (base URL, token)."""
    port, token = _free_port(), "fresh-venv-token"
    home = fresh_venv.root / "home"
    home.mkdir(exist_ok=True)
    cmd = [
        str(fresh_venv.venv / "bin" / "jupyter"),
        "lab",
        "--no-browser",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        "--ServerApp.ip=127.0.0.1",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={home}",
        f"--AgClusterApp.state_root={fresh_venv.root / 'agcluster-state'}",
        *(["--allow-root"] if os.geteuid() == 0 else []),
    ]
    log_path = fresh_venv.root / "jupyter-lab.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(cmd, env=fresh_venv.env, cwd=home, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, f"jupyter lab exited:\n{log_path.read_text()}"
            try:
                _get(f"{base}/api/status", token)
                break
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline:
                    pytest.fail(f"jupyter lab did not answer in 90 s:\n{log_path.read_text()}")
                time.sleep(0.3)
        yield base, token
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _get(url: str, token: str) -> str:
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        body: bytes = response.read()
        return body.decode()


def test_jupyter_lab_serves_the_agents_panel_and_the_api(
    fresh_venv: FreshVenv, lab: tuple[str, str]
) -> None:
    base, token = lab
    page = _PageConfig()
    page.feed(_get(f"{base}/lab", token))
    config: dict[str, Any] = json.loads(page.text)
    names = {extension["name"] for extension in config["federated_extensions"]}
    assert "agcluster-jupyter" in names, sorted(names)
    health = json.loads(_get(f"{base}/api/agcluster/health", token))
    assert health["version"] == fresh_venv.version
