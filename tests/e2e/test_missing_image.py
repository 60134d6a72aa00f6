"""A machine with a Docker engine but no agent image: the image tests skip, saying how to
build it, like every docker test (they errored with pytest.fail before); under CI they
fail instead."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]
#: loaded before the tests: the image they look for is one that does not exist
PLUGIN = """
import agcluster_jupyter.providers.docker_image as docker_image
docker_image.default_image_tag = lambda: "agcluster-agent:no-such-version-for-this-test"
"""


def _run(tmp_path: Path, ci: bool) -> subprocess.CompletedProcess[str]:
    (tmp_path / "missing_image_plugin.py").write_text(PLUGIN)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PYTHONPATH"] = f"{tmp_path}{os.pathsep}{env.get('PYTHONPATH', '')}"
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "missing_image_plugin",
         "-p", "no:cacheprovider", "tests/e2e/test_agent_image.py"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_no_image_is_a_skip_with_the_build_command(require_docker: object, tmp_path: Path) -> None:
    done = _run(tmp_path, ci=False)
    assert done.returncode == 0, done.stdout[-3000:]
    summary = done.stdout.strip().splitlines()[-1]
    assert "skipped" in summary and "error" not in summary and "failed" not in summary, summary
    assert "jupyter agcluster build-image" in done.stdout  # the skip says how to fix it


def test_under_ci_a_missing_image_fails(require_docker: object, tmp_path: Path) -> None:
    done = _run(tmp_path, ci=True)
    assert done.returncode != 0 and "build-image" in done.stdout, done.stdout[-2000:]
