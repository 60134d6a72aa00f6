"""``agcluster-scripted-model``: serve the scripted model from the command line."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence

from .script import ScriptError
from .server import ScriptedModelServer, demo_script, load_scripts

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agcluster-scripted-model",
        description="A scripted Anthropic Messages API for tests and demo mode. "
        "Point the claude CLI at it with ANTHROPIC_BASE_URL=<printed url>.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port (0 = any free port)")
    parser.add_argument(
        "--script",
        action="append",
        metavar="FILE",
        help="YAML/JSON script; repeat to combine (earlier files win). Default: the demo",
    )
    parser.add_argument(
        "--api-key",
        action="append",
        metavar="KEY",
        help="accepted x-api-key; repeatable. Default: any non-empty key",
    )
    return parser


async def _serve(server: ScriptedModelServer) -> None:
    await server.start_async()
    print(server.url, flush=True)  # first line of output: scripts read it
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop_async()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        script = load_scripts(args.script) if args.script else demo_script()
    except (OSError, ScriptError) as e:
        print(f"agcluster-scripted-model: {e}", file=sys.stderr)
        return 2
    server = ScriptedModelServer(script, api_key=args.api_key, host=args.host, port=args.port)
    try:
        asyncio.run(_serve(server))
    except OSError as e:  # e.g. the port is taken
        print(
            f"agcluster-scripted-model: cannot listen on {args.host}:{args.port}: {e}",
            file=sys.stderr,
        )
        return 1
    return 0
