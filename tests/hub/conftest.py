"""Fixtures of the JupyterHub tests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

# the Docker engine + agent image fixture of the docker e2e tests (test_dockerspawner.py)
from ..e2e.conftest import docker_client  # noqa: F401
from .hub_support import PROXY_DIR


@pytest.fixture(scope="session")
def chp() -> Path:
    """The configurable-http-proxy executable, installed with ``npm ci`` when missing."""
    exe = PROXY_DIR / "node_modules" / ".bin" / "configurable-http-proxy"
    if not exe.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("npm is needed to install configurable-http-proxy (tests/hub/proxy)")
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=PROXY_DIR,
            check=True,
            timeout=300,
        )
    assert exe.exists(), exe
    return exe
