"""``jupyter agcluster``: command-line tools that go with the server extension.

::

    jupyter agcluster build-image [--base-image IMG] [--tag TAG] [--network NET]
                                  [--no-cache] [--quiet]
    jupyter agcluster settings [--markdown]
    jupyter agcluster --help-all

``settings`` lists every ``AgClusterApp`` setting with its type, default and help
(``--markdown``: the README's table); ``--help-all`` prints them as Jupyter's own
``--help-all`` does, which ``jupyter server --help-all`` cannot (it prints its help
before it loads any extension).  Both come from :mod:`agcluster_jupyter.settings_doc`.

``build-image`` builds the agent image the docker provider runs (default tag
``agcluster-agent:<version>``, ``AgClusterApp.agent_image``'s default) through the Docker
Engine API (the ``docker`` SDK; no docker CLI needed).  Its build context is assembled in
a temporary directory from the installed package, so it works from a wheel as well as
from a source checkout: the Dockerfile and entry point (``agcluster_jupyter/_docker`` in
a wheel, ``docker/`` in a checkout), the ``agcluster_jupyter`` package itself, and a
``requirements.txt`` of the runner's dependencies pinned to the versions installed here,
so the runner in the container speaks the same SDK and CLI as the server was tested with.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import socket
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

from ._version import __version__

__all__ = [
    "DEFAULT_BASE_IMAGE",
    "DEFAULT_DOCKER_HOST",
    "DISTRIBUTION",
    "DOCKERFILE",
    "VERSION_LABEL",
    "BuildError",
    "BuildResult",
    "DockerUnreachable",
    "assemble_context",
    "build_image",
    "connect",
    "default_image_tag",
    "docker_files_dir",
    "docker_host",
    "main",
    "make_parser",
    "runtime_requirements",
    "unreachable_message",
]

DISTRIBUTION = "agcluster-jupyter"
DOCKERFILE = "Dockerfile.agent"
ENTRYPOINT = "agent-entrypoint.sh"
DEFAULT_BASE_IMAGE = "python:3.11-slim"
DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
#: Label the image carries: the project version it was built from.
VERSION_LABEL = "org.agcluster.version"

# Server-side dependencies the runner does not need inside the container.
_NOT_IN_IMAGE = frozenset({"jupyter-server", "docker"})
# Never part of the image's copy of the package.
_COPY_IGNORE = shutil.ignore_patterns(
    "__pycache__", "*.pyc", "*.pyo", ".mypy_cache", ".pytest_cache", "node_modules",
    "labextension", "_docker",
)  # fmt: skip


class DockerUnreachable(Exception):
    """The Docker engine did not answer; ``str()`` is the one-line message for users."""


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


def docker_host() -> str:
    """Where the Docker SDK looks for the engine: ``$DOCKER_HOST`` or the default socket."""
    return os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST


def _os_reason(exc: BaseException) -> str | None:
    """The first OS-level reason (``strerror``) in an exception's causes and arguments.

    The Docker SDK wraps the socket error two or three times (requests, urllib3); this
    digs out "No such file or directory", "Permission denied", "Connection refused".
    """
    seen: set[int] = set()
    queue: deque[BaseException] = deque([exc])
    while queue:
        current = queue.popleft()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and isinstance(current.strerror, str) and current.strerror:
            return current.strerror
        queue.extend(arg for arg in current.args if isinstance(arg, BaseException))
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                queue.append(linked)
    return None


def unreachable_message(exc: BaseException, host: str | None = None) -> str:
    """One line naming the engine's address, the reason, and what to do about it."""
    host = host or docker_host()
    reason = _os_reason(exc) or " ".join(str(exc).split()) or type(exc).__name__
    hint = "start dockerd or set DOCKER_HOST"
    if "permission denied" in reason.lower():
        hint = "run as root or join the docker group, or set DOCKER_HOST"
    return f"cannot reach Docker at {host}: {reason}; {hint}"


def connect(timeout: float = 15) -> Any:
    """A ``docker.DockerClient`` whose engine answered a ping, else :class:`DockerUnreachable`."""
    host = docker_host()
    if host.startswith("unix://"):
        # Probe the socket first: the SDK leaks the socket of a failed connect
        # (an unclosed-socket ResourceWarning), and this is the common failure.
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(timeout)
                sock.connect(host.removeprefix("unix://"))
        except OSError as exc:
            raise DockerUnreachable(unreachable_message(exc, host)) from exc
    # Untyped, and mypy would take the checkout's docker/ folder for it: load it as Any.
    docker: Any = importlib.import_module("docker")
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except Exception as exc:  # the SDK raises DockerException and requests' errors alike
        raise DockerUnreachable(unreachable_message(exc)) from exc
    return client


def docker_files_dir() -> Path:
    """The folder holding ``Dockerfile.agent``: in the installed wheel, or the checkout's."""
    here = Path(__file__).resolve().parent
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
    package = Path(__file__).resolve().parent
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


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jupyter agcluster",
        description="Tools for agcluster-jupyter (Claude agents in containers, from Jupyter).",
        epilog=(
            "jupyter agcluster --help-all prints every AgClusterApp setting the way "
            "Jupyter's --help-all does."
        ),
    )
    parser.add_argument("--version", action="version", version=f"agcluster-jupyter {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    build = commands.add_parser(
        "build-image",
        help="build the agent image the docker provider runs",
        description=(
            "Build the agent container image (the runner, claude-agent-sdk with its bundled "
            "claude CLI, git, the data-analysis stack) through the Docker engine at "
            "$DOCKER_HOST (default unix:///var/run/docker.sock)."
        ),
    )
    build.add_argument(
        "--base-image",
        default=DEFAULT_BASE_IMAGE,
        metavar="IMG",
        help="image to build on: a Debian-like image with python3 (default: %(default)s)",
    )
    build.add_argument(
        "--tag",
        default=None,
        metavar="TAG",
        help=f"tag of the result (default: {default_image_tag()}, AgClusterApp.agent_image)",
    )
    build.add_argument(
        "--network",
        default=None,
        metavar="NET",
        help="network for the build's RUN steps, e.g. host (default: the engine's)",
    )
    build.add_argument("--no-cache", action="store_true", help="rebuild every layer")
    build.add_argument(
        "--quiet", "-q", action="store_true", help="print only the result (or the error)"
    )
    build.set_defaults(func=_cmd_build_image)
    listing = commands.add_parser(
        "settings",
        help="list every AgClusterApp setting with its type, default and help",
        description=(
            "Every setting of the agcluster server extension (AgClusterApp): set them with "
            "--AgClusterApp.<name>=<value> on the command line of jupyter server or jupyter "
            "lab, or c.AgClusterApp.<name> = <value> in jupyter_server_config.py."
        ),
    )
    listing.add_argument(
        "--markdown", action="store_true", help="print the README's table of them instead"
    )
    listing.set_defaults(func=_cmd_settings)
    return parser


def _cmd_settings(args: argparse.Namespace) -> int:
    from . import settings_doc  # imports the server extension: only for this command

    sys.stdout.write(
        settings_doc.markdown_table() + "\n" if args.markdown else settings_doc.text_listing()
    )
    return 0


def _size(num: int) -> str:
    return f"{num / 1e9:.2f} GB" if num >= 1e9 else f"{num / 1e6:.0f} MB"


def _cmd_build_image(args: argparse.Namespace) -> int:
    err = sys.stderr
    try:
        client = connect()
    except DockerUnreachable as exc:
        print(f"error: {exc}", file=err)
        return 1
    try:
        if not args.quiet:
            print(
                f"building {args.tag or default_image_tag()} from {args.base_image} "
                f"(Docker at {docker_host()})",
                flush=True,
            )
        result = build_image(
            base_image=args.base_image,
            tag=args.tag,
            network=args.network,
            no_cache=args.no_cache,
            quiet=args.quiet,
            client=client,
        )
    except BuildError as exc:
        if args.quiet and exc.log_tail:
            print("\n".join(exc.log_tail), file=err)
        print(f"error: the image build failed: {exc}", file=err)
        return 1
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=err)
        return 1
    except Exception as exc:  # the engine failing mid-build: one line, not a traceback
        print(f"error: {unreachable_message(exc) if _os_reason(exc) else exc}", file=err)
        return 1
    finally:
        client.close()
    print(
        f"built {result.tag} ({result.image_id[:19]}, {VERSION_LABEL}={result.version_label}) "
        f"in {result.seconds:.1f} s; image size {_size(result.size_bytes)}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--help-all"]:
        from .settings_doc import help_all

        sys.stdout.write(help_all())
        return 0
    parser = make_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
