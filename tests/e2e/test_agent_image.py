"""The agent image, as ``jupyter agcluster build-image`` builds it (``.ci/run`` does), run
the way the docker provider runs it: any uid, read-only root, tmpfs /tmp and $HOME, no
network, no capabilities, no privilege gain.

Skipped only when no Docker engine answers outside CI; in CI (``CI`` set) a missing engine
or image fails.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from agcluster_jupyter import __version__
from agcluster_jupyter.providers.docker_engine import DockerUnreachable, connect
from agcluster_jupyter.providers.docker_image import VERSION_LABEL, default_image_tag

from .docker_support import docker_unusable

pytestmark = pytest.mark.docker

UID = "12345:12345"  # no such user in the image: nothing may depend on uid 1000
HARDENED: dict[str, Any] = {
    "user": UID,
    "read_only": True,
    "tmpfs": {"/tmp": "", "/home/agent": ""},
    "network_mode": "none",
    "cap_drop": ["ALL"],
    "security_opt": ["no-new-privileges"],
    "pids_limit": 256,
    # this run's own: other runs may share the engine
    "labels": {"org.agcluster.test": f"agent-image-{uuid.uuid4().hex[:12]}"},
}

PROBE = r"""
import json, os, subprocess, sys, time
t0 = time.monotonic()
import claude_agent_sdk
import agcluster_jupyter
import agcluster_jupyter.runner.process
import pandas, numpy, scipy.stats, sklearn.linear_model, matplotlib, nbformat
imports = time.monotonic() - t0
matplotlib.use("Agg")
import matplotlib.pyplot as plt
plt.plot([1, 2, 3], [1, 4, 9])
plt.savefig("/tmp/plot.png")
frame = pandas.DataFrame({"x": [1.0, 2.0, 3.0], "y": [2.0, 4.0, 6.0]})
model = sklearn.linear_model.LinearRegression().fit(frame[["x"]], frame["y"])
nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")])
nbformat.validate(nb)
def run(*cmd):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    return {"code": p.returncode, "out": p.stdout.strip(), "err": p.stderr.strip()[-500:]}
bundled = os.path.join(os.path.dirname(claude_agent_sdk.__file__), "_bundled", "claude")
try:
    open("/opt/agent/probe", "w")
    root_writable = True
except OSError:
    root_writable = False
with open(os.path.join(os.environ["HOME"], "probe"), "w") as f:
    f.write("ok")
print(json.dumps({
    "uid": os.getuid(), "gid": os.getgid(), "home": os.environ["HOME"], "cwd": os.getcwd(),
    "python": sys.executable, "package": agcluster_jupyter.__version__,
    "package_file": agcluster_jupyter.__file__, "imports_s": round(imports, 2),
    "slope": round(float(model.coef_[0]), 6), "plot": os.path.getsize("/tmp/plot.png"),
    "claude": run("claude", "--version"), "bundled": run(bundled, "--version"),
    "git": run("git", "--version"), "root_writable": root_writable,
}))
"""


@pytest.fixture(scope="module")
def engine() -> Iterator[Any]:
    try:
        client = connect(timeout=15)
    except DockerUnreachable as exc:
        docker_unusable(str(exc))
    yield client
    client.close()


@pytest.fixture(scope="module")
def image(engine: Any) -> Any:
    tag = default_image_tag()
    try:
        return engine.images.get(tag)
    except Exception as exc:  # noqa: BLE001 - docker.errors.ImageNotFound and the like
        # like every docker test: a skip on a developer's machine, a failure under CI
        docker_unusable(f"no image {tag} ({exc}): build it with `jupyter agcluster build-image`")


def run(client: Any, image: Any, command: list[str] | None, **extra: Any) -> str:
    out = client.containers.run(
        image.id, command, remove=True, stdout=True, stderr=False, **{**HARDENED, **extra}
    )
    return out.decode() if isinstance(out, bytes) else str(out)


def test_image_carries_the_version_label(image: Any) -> None:
    labels = image.attrs["Config"]["Labels"] or {}
    assert labels.get(VERSION_LABEL) == __version__
    assert default_image_tag() in image.tags


def test_image_config(image: Any) -> None:
    config = image.attrs["Config"]
    assert config["User"] == "1000:1000"
    assert config["WorkingDir"] == "/workspace"
    assert config["Entrypoint"] == ["/usr/local/bin/agcluster-entrypoint"]
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["HOME"] == "/home/agent"
    assert env["PATH"].startswith("/opt/agent/bin:")
    assert not any("KEY" in name or "TOKEN" in name for name in env)
    # a generous bound, to notice bloat (measured: ~1.07 GB on the debootstrap base)
    assert image.attrs["Size"] < 1.6e9


def test_hardened_container_runs_everything_the_presets_promise(engine: Any, image: Any) -> None:
    result = json.loads(run(engine, image, ["python", "-c", PROBE]).strip().splitlines()[-1])
    assert (result["uid"], result["gid"]) == (12345, 12345)
    assert result["home"] == "/home/agent"
    assert result["cwd"] == "/workspace"
    assert result["python"].startswith("/opt/agent/")
    assert result["package"] == __version__
    assert result["package_file"].startswith("/opt/agcluster/")
    assert result["slope"] == 2.0
    assert result["plot"] > 1000
    for tool in ("claude", "bundled"):
        assert result[tool]["code"] == 0, result[tool]
        assert "Claude Code" in result[tool]["out"]
    assert result["claude"]["out"] == result["bundled"]["out"]
    assert result["git"]["code"] == 0 and result["git"]["out"].startswith("git version")
    assert result["root_writable"] is False


def test_entrypoint_runs_the_runner_with_options(engine: Any, image: Any) -> None:
    out = run(engine, image, ["--help"])
    assert "usage: python -m agcluster_jupyter.runner" in out
    assert "--listen" in out and "--gateway" in out
    # the image's default command is the same help
    assert "usage: python -m agcluster_jupyter.runner" in run(engine, image, None)
    # and the whole command, as the docker provider passes it, runs as it is
    full = ["python", "-m", "agcluster_jupyter.runner", "--help"]
    assert "usage: python -m agcluster_jupyter.runner" in run(engine, image, full)


def test_no_test_container_is_left(engine: Any, image: Any) -> None:
    ours = "org.agcluster.test=" + HARDENED["labels"]["org.agcluster.test"]
    left = engine.containers.list(all=True, filters={"label": ours})
    assert left == []
