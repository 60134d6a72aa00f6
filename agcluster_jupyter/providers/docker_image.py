"""The agent image: its build context and its build, through the Docker Engine API.

The context is assembled in a temporary directory from the installed package, so it works
from a wheel as well as from a source checkout: the Dockerfile and entry point
(``agcluster_jupyter/_docker`` in a wheel, ``docker/`` in a checkout), the
``agcluster_jupyter`` package itself, and a ``requirements.txt`` of the runner's
dependencies pinned to the versions installed here, so the runner in the container
speaks the same SDK and CLI as the server was tested with.  ``jupyter agcluster
build-image`` (:mod:`agcluster_jupyter.cli`) is its command line.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, TextIO

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from .._version import __version__
from .docker_engine import connect
from .docker_spec import IMAGE_VERSION_LABEL

__all__ = [
    "DEFAULT_BASE_IMAGE",
    "DISTRIBUTION",
    "DOCKERFILE",
    "VERSION_LABEL",
    "BuildError",
    "BuildResult",
    "assemble_context",
    "build_image",
    "default_image_tag",
    "docker_files_dir",
    "runtime_requirements",
]

DISTRIBUTION = "agcluster-jupyter"
DOCKERFILE = "Dockerfile.agent"
ENTRYPOINT = "agent-entrypoint.sh"
DEFAULT_BASE_IMAGE = "python:3.11-slim"
#: Label the image carries: the project version it was built from.
VERSION_LABEL = IMAGE_VERSION_LABEL

# Server-side dependencies the runner does not need inside the container.
_NOT_IN_IMAGE = frozenset({"jupyter-server", "docker", "nbdime"})
# Never part of the image's copy of the package.
_COPY_IGNORE = shutil.ignore_patterns(
    "__pycache__", "*.pyc", "*.pyo", ".mypy_cache", ".pytest_cache", "node_modules",
    "labextension", "_docker",
)  # fmt: skip


class BuildError(Exception):
    """The image build failed; ``log_tail`` holds the last lines of its output."""

    def __init__(self, message: str, log_tail: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.log_tail = list(log_tail)


@dataclass(frozen=True)
class BuildResult:
    tag: str
    image_id: str
    size_bytes: int
    seconds: float
    version_label: str | None


def default_image_tag() -> str:
    """``agcluster-agent:<version>``: the default of ``AgClusterApp.agent_image``."""
    return f"agcluster-agent:{__version__}"


def docker_files_dir() -> Path:
    """The folder holding ``Dockerfile.agent``: in the installed wheel, or the checkout's."""
    here = Path(__file__).resolve().parents[1]  # the package
    for candidate in (here / "_docker", here.parent / "docker"):
        if (candidate / DOCKERFILE).is_file():
            return candidate
    raise FileNotFoundError(
        f"{DOCKERFILE} is neither in {here / '_docker'} (a wheel install) nor in "
        f"{here.parent / 'docker'} (a source checkout): reinstall {DISTRIBUTION}"
    )


def runtime_requirements(requires: Iterable[str] | None = None) -> list[str]:
    """The runner's dependencies for the image's ``requirements.txt``.

    The distribution's own requirements less the server-only ones (jupyter_server, docker)
    and the extras, each pinned to the version installed here when that satisfies it.
    """
    if requires is None:
        try:
            requires = metadata.requires(DISTRIBUTION) or []
        except metadata.PackageNotFoundError as exc:
            raise FileNotFoundError(
                f"{DISTRIBUTION} is not installed (pip install -e . in a checkout)"
            ) from exc
    lines: list[str] = []
    for raw in requires:
        req = Requirement(raw)
        if req.marker is not None and "extra" in str(req.marker):
            continue
        if canonicalize_name(req.name) in _NOT_IN_IMAGE:
            continue
        marker = f"; {req.marker}" if req.marker is not None else ""
        try:
            installed = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            installed = None
        if installed is not None and req.specifier.contains(installed, prereleases=True):
            lines.append(f"{req.name}=={installed}{marker}")
        else:
            lines.append(str(req))
    return lines


def assemble_context(dest: Path) -> Path:
    """Fill ``dest`` with the build context; returns ``dest``."""
    files = docker_files_dir()
    shutil.copy2(files / DOCKERFILE, dest / DOCKERFILE)
    shutil.copy2(files / ENTRYPOINT, dest / ENTRYPOINT)
    (dest / ENTRYPOINT).chmod(0o755)
    (dest / "requirements.txt").write_text("\n".join(runtime_requirements()) + "\n")
    package = Path(__file__).resolve().parents[1]
    shutil.copytree(package, dest / "agcluster_jupyter", ignore=_COPY_IGNORE)
    return dest


def _lines(chunks: Iterable[dict[str, Any]]) -> Iterator[tuple[str, str]]:
    """(kind, text) from the engine's build stream: ``stream``, ``status``, ``aux``."""
    for chunk in chunks:
        if "error" in chunk or "errorDetail" in chunk:
            detail = chunk.get("errorDetail") or {}
            yield "error", str(chunk.get("error") or detail.get("message") or chunk)
        elif "stream" in chunk:
            yield "stream", str(chunk["stream"])
        elif "status" in chunk:
            progress = chunk.get("progress") or ""
            ident = chunk.get("id") or ""
            yield "status", " ".join(p for p in (ident, str(chunk["status"]), progress) if p)
        elif "aux" in chunk:
            yield "aux", str((chunk["aux"] or {}).get("ID", ""))


def build_image(
    *,
    base_image: str = DEFAULT_BASE_IMAGE,
    tag: str | None = None,
    network: str | None = None,
    no_cache: bool = False,
    quiet: bool = False,
    out: TextIO | None = None,
    client: Any = None,
) -> BuildResult:
    """Build the agent image, streaming the engine's output to ``out`` unless ``quiet``."""
    out = out or sys.stdout
    tag = tag or default_image_tag()
    client = client or connect()
    tail: deque[str] = deque(maxlen=40)
    started = time.monotonic()
    image_id = ""
    with tempfile.TemporaryDirectory(prefix="agcluster-build-") as tmp:
        context = assemble_context(Path(tmp))
        chunks = client.api.build(
            path=str(context),
            dockerfile=DOCKERFILE,
            tag=tag,
            buildargs={"BASE_IMAGE": base_image, "AGCLUSTER_VERSION": __version__},
            network_mode=network,
            nocache=no_cache,
            rm=True,
            forcerm=True,
            pull=False,
            decode=True,
        )
        pending = ""
        for kind, text in _lines(chunks):
            if kind == "error":
                raise BuildError(text.strip(), [*tail, pending] if pending else tail)
            if kind == "aux":
                image_id = text or image_id
                continue
            if kind == "status":
                text += "\n"
            if not quiet:
                out.write(text)
                out.flush()
            pending += text
            *done, pending = pending.split("\n")
            tail.extend(done)
    image = client.images.get(tag)
    labels = (image.attrs.get("Config") or {}).get("Labels") or {}
    return BuildResult(
        tag=tag,
        image_id=str(image.id or image_id),
        size_bytes=int(image.attrs.get("Size") or 0),
        seconds=time.monotonic() - started,
        version_label=labels.get(VERSION_LABEL),
    )
