"""The checkout's sdist and wheel, built as a release builds them, for the packaging tests.

``python -m build`` (an isolated build: hatchling and the jupyter-builder hook in a
throwaway environment) makes the sdist, then the wheel from that sdist, so the wheel
also proves the sdist is complete.  The labextension is already built into
``agcluster_jupyter/labextension`` (the sdist ships it as an artifact), so no Node runs.
Without the ``build`` package only the wheel is made (``pip wheel --no-deps``).
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

#: the distribution's name as it appears in file names
DIST_NAME = "agcluster_jupyter"


@dataclass(frozen=True)
class Dists:
    wheel: Path
    #: None when ``build`` is not installed (pip builds wheels only)
    sdist: Path | None


#: where pip finds what a fresh environment needs (build backends, JupyterLab, ...)
INDEX_HOST = ("pypi.org", 443)


def network_reachable(timeout: float = 5.0) -> bool:
    """Whether PyPI answers a TCP connect."""
    try:
        with socket.create_connection(INDEX_HOST, timeout=timeout):
            return True
    except OSError:
        return False


def offline_skip_or_fail(what: str, output: str) -> None:
    """``what`` failed: a skip when PyPI is unreachable on a developer's machine, else (and
    always under ``CI``) a failure showing the end of ``output``."""
    tail = "\n".join(output.splitlines()[-40:])
    if not os.environ.get("CI") and not network_reachable():
        pytest.skip(f"{what} failed and PyPI ({INDEX_HOST[0]}) is unreachable: needs the network")
    pytest.fail(f"{what} failed:\n{tail}")


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        offline_skip_or_fail(f"{' '.join(cmd)} (exit {proc.returncode})", proc.stdout + proc.stderr)


def build_dists(out: Path) -> Dists:
    """Build into ``out`` (an empty folder) and return the two files.

    The isolated build fetches its backend: a build failing with PyPI unreachable is a
    skip, except under ``CI`` (see :func:`offline_skip_or_fail`).
    """
    if importlib.util.find_spec("build") is not None:
        _run([sys.executable, "-m", "build", "--outdir", str(out), str(REPO)])
    else:
        _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(REPO)])
    wheels = sorted(out.glob(f"{DIST_NAME}-*.whl"))
    sdists = sorted(out.glob(f"{DIST_NAME}-*.tar.gz"))
    assert len(wheels) == 1, f"expected one wheel in {out}: {wheels}"
    return Dists(wheel=wheels[0], sdist=sdists[0] if sdists else None)
