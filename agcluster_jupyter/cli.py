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
Engine API (the ``docker`` SDK; no docker CLI needed): how is in
:mod:`agcluster_jupyter.providers.docker_image`.
"""

from __future__ import annotations

import argparse
import sys

from ._version import __version__
from .providers.docker_engine import (
    DockerUnreachable,
    connect,
    docker_host,
    os_reason,
    unreachable_message,
)
from .providers.docker_image import (
    DEFAULT_BASE_IMAGE,
    VERSION_LABEL,
    BuildError,
    build_image,
    default_image_tag,
)
from .units import format_bytes

__all__ = ["main", "make_parser"]


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
    except Exception as exc:  # noqa: BLE001 - the engine failing mid-build: one line
        print(f"error: {unreachable_message(exc) if os_reason(exc) else exc}", file=err)
        return 1
    finally:
        client.close()
    print(
        f"built {result.tag} ({result.image_id[:19]}, {VERSION_LABEL}={result.version_label}) "
        f"in {result.seconds:.1f} s; image size {format_bytes(result.size_bytes)}"
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
