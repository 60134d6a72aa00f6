"""The agent runner process: arguments, environment, sockets, signals.

::

    python -m agcluster_jupyter.runner --listen unix:/run/agent/runner.sock | tcp:HOST:PORT
        --workspace DIR --state-dir DIR
        --gateway unix:/run/agent/gateway.sock | http(s)://URL
        [--resume SDK_SESSION_ID] [--agent-user NAME_OR_UID] [--adopt-workspace]

Env: ``AGCLUSTER_CONFIG`` (the AgentConfig JSON), ``AGCLUSTER_SESSION_TOKEN`` (the CLI's
API key towards our gateway) and ``AGCLUSTER_RUNNER_TOKEN_SHA256`` (the digest of the
control token every request must carry; required).  All three are removed from the
environment at once: the CLI, and so the agent's own tools, inherit it.
``AGCLUSTER_ISOLATED`` and ``AGCLUSTER_NETWORK`` ("1"/"0", set by the provider) say
whether the agent is isolated and has a network; the agent is told (without them: not
isolated, network).  The runner
makes itself non-dumpable first thing, so processes of its own uid cannot read its
``/proc`` entries (environment, memory, fds) or ptrace it.

A unix socket is mode 0600.  A root runner hands it to the owner of its directory (the
provider makes that directory for the server's user), or, when that directory does not
exist yet, makes it root's own (0755: nobody else can replace the socket in it) and
hands the socket to the owner of the directory above.
SIGTERM/SIGINT or ``POST /shutdown`` end the running turn, close the client (and so the
CLI) and exit 0.  Bad arguments or env exit 2.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import importlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from tornado import httputil, web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets, bind_unix_socket

from ..config import AgentConfig, format_validation_error
from .forwarder import Forwarder
from .protocol import (
    ENV_CONFIG,
    ENV_ISOLATED,
    ENV_JUPYTER_TOOLS,
    ENV_NETWORK,
    ENV_RUNNER_TOKEN_SHA256,
    ENV_SESSION_TOKEN,
    JUPYTER_TOOLS_KERNEL,
    MAX_BODY_BYTES,
    token_matches,
)
from .users import AgentUser, resolve_agent_user

__all__ = ["main", "parse_args", "serve"]

log = logging.getLogger("agcluster_jupyter.runner")


class UsageError(Exception):
    pass


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m agcluster_jupyter.runner",
        description="Serve one Claude agent over the agcluster runner channel.",
    )
    parser.add_argument("--listen", required=True, help="unix:/path.sock or tcp:HOST:PORT")
    parser.add_argument("--workspace", required=True, type=Path, help="the agent's cwd")
    parser.add_argument(
        "--state-dir", required=True, type=Path, help="CLI config, transcripts, tmp, home"
    )
    parser.add_argument(
        "--gateway", required=True, help="unix:/path.sock or http(s)://URL of the model gateway"
    )
    parser.add_argument("--resume", default=None, help="SDK session id to continue")
    parser.add_argument(
        "--agent-user", default=None, help="run the CLI as this user (only when root)"
    )
    parser.add_argument(
        "--adopt-workspace",
        action="store_true",
        help="create the workspace folder if missing and give it to --agent-user when it "
        "is root's (a fresh volume, as Fly mounts one)",
    )
    parser.add_argument(
        "--workspace-readonly",
        action="store_true",
        help="the workspace is mounted read-only (a folder given to read): not probed for writing",
    )
    parser.add_argument(
        "--checkpoint-dir",
        default=None,
        type=Path,
        help="keep the workspace's per-turn checkpoints here (outside the workspace, "
        "where the agent's uid cannot write): the server then asks the runner for them",
    )
    parser.add_argument(
        "--checkpoint-max-bytes",
        default=2 * 1024**3,
        type=int,
        help="the checkpoint store's bound; past it the oldest checkpoints are pruned",
    )
    parser.add_argument("--log-level", default="INFO", help="runner log level (stderr)")
    return parser.parse_args(argv)


def _bind(listen: str) -> tuple[list[socket.socket], str | None]:
    """The listening sockets and, for unix, the path (removed again on exit)."""
    if listen.startswith("unix:"):
        path = listen.removeprefix("unix:")
        if not path:
            raise UsageError("--listen unix: needs a path")
        # 0600, and (when root) owned by whoever owns the socket's directory: the
        # provider makes that directory for the server's user; the agent gets no access
        folder = os.path.dirname(os.path.abspath(path))
        owner_folder = folder
        if os.geteuid() == 0 and not os.path.isdir(folder):
            # a folder of the runner's own (root's, 0755) inside the one the server
            # reaches: the agent's uid can neither enter a socket of its own there nor
            # take this one's place
            os.mkdir(folder, 0o755)
            owner_folder = os.path.dirname(folder)
        sock = bind_unix_socket(path, mode=0o600)
        if os.geteuid() == 0:
            owner = os.stat(owner_folder)
            os.chown(path, owner.st_uid, owner.st_gid)
        return [sock], path
    if listen.startswith("tcp:"):
        host, _, port = listen.removeprefix("tcp:").rpartition(":")
        if not host or not port.isdigit():
            raise UsageError("--listen tcp: needs HOST:PORT, e.g. tcp:0.0.0.0:8765")
        return bind_sockets(int(port), host.strip("[]")), None
    raise UsageError(f"--listen {listen!r}: use unix:/path.sock or tcp:HOST:PORT")


def _drop_groups(user: AgentUser) -> None:
    """Give the runner the agent's group and no supplementary ones.

    The SDK spawns the CLI with ``user=`` only, so it would keep root's gid and groups;
    the runner keeps uid 0 (and so its powers), the CLI inherits a clean group set.
    """
    try:
        os.setgroups([])
        os.setresgid(user.gid, user.gid, user.gid)
    except OSError as exc:  # no CAP_SETGID: the CLI keeps the runner's groups
        log.warning("could not drop groups for the agent user: %s", exc)


def _not_dumpable() -> None:
    """``prctl(PR_SET_DUMPABLE, 0)``: this process's ``/proc/<pid>`` files (environ, mem,
    fd, ...) become root's and ptrace needs CAP_SYS_PTRACE, even for its own uid."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(4, 0, 0, 0, 0) != 0:  # PR_SET_DUMPABLE = 4
            log.warning("prctl(PR_SET_DUMPABLE, 0) failed: errno %d", ctypes.get_errno())
    except (OSError, AttributeError) as exc:  # not Linux
        log.warning("cannot make the runner non-dumpable: %s", exc)


class _BootHandler(web.RequestHandler):
    """Answers while the agent modules load: health says ``starting``, the rest 503."""

    def initialize(self, digest: str, on_shutdown: Callable[[], None]) -> None:
        self.digest = digest
        self.on_shutdown = on_shutdown

    def check_xsrf_cookie(self) -> None:
        return

    def _reply(self) -> None:
        self.set_header("Content-Type", "application/json")
        if not token_matches(self.request.headers.get("Authorization", ""), self.digest):
            log.warning(
                "refused %s %s: no valid control token", self.request.method, self.request.path
            )
            self.set_status(401)
            self.finish('{"message": "a valid bearer token is required"}')
            return
        if self.request.path == "/health":
            self.finish('{"status": "starting", "detail": "loading the agent"}')
            return
        if self.request.path == "/shutdown" and self.request.method == "POST":
            self.finish('{"shutdown": true}')
            self.on_shutdown()
            return
        self.set_status(503)
        self.set_header("Retry-After", "1")
        self.finish('{"message": "the runner is starting; retry shortly"}')

    get = post = put = delete = _reply


class _Switch(httputil.HTTPServerConnectionDelegate):
    """The server's request callback: the boot app first, the real app once loaded."""

    def __init__(self, app: web.Application) -> None:
        self.app = app

    def start_request(
        self, server_conn: object, request_conn: httputil.HTTPConnection
    ) -> httputil.HTTPMessageDelegate:
        return self.app.start_request(server_conn, request_conn)

    def on_close(self, server_conn: object) -> None:
        self.app.on_close(server_conn)


async def serve(args: argparse.Namespace) -> int:
    _not_dumpable()
    config_json = os.environ.pop(ENV_CONFIG, "")
    session_token = os.environ.pop(ENV_SESSION_TOKEN, "")
    digest = os.environ.pop(ENV_RUNNER_TOKEN_SHA256, "").strip().lower()
    # unknown means the cautious story: not isolated, and maybe a network
    isolated = os.environ.pop(ENV_ISOLATED, "0").strip() == "1"
    network = os.environ.pop(ENV_NETWORK, "1").strip() != "0"
    tools_env = os.environ.pop(ENV_JUPYTER_TOOLS, "0").strip()
    jupyter_tools = tools_env in ("1", JUPYTER_TOOLS_KERNEL)
    kernel_tools = tools_env == JUPYTER_TOOLS_KERNEL
    if not config_json:
        raise UsageError(f"{ENV_CONFIG} must hold the AgentConfig JSON")
    try:
        config = AgentConfig.model_validate_json(config_json)
    except ValidationError as exc:
        raise UsageError(f"{ENV_CONFIG}: {format_validation_error(exc)[0]}") from None
    if not session_token:
        raise UsageError(f"{ENV_SESSION_TOKEN} must hold the session's gateway token")
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise UsageError(
            f"{ENV_RUNNER_TOKEN_SHA256} must hold the SHA-256 (hex) of the control token"
        )
    try:
        agent_user = resolve_agent_user(args.agent_user)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.agent_user and agent_user is None:
        log.info("not root: --agent-user %s ignored, the CLI runs as this user", args.agent_user)

    forwarder: Forwarder | None = None
    if args.gateway.startswith("unix:"):
        forwarder = Forwarder(args.gateway.removeprefix("unix:"))
        await forwarder.start()
        base_url = forwarder.url
    elif args.gateway.startswith(("http://", "https://")):
        base_url = args.gateway.rstrip("/")
    else:
        raise UsageError(f"--gateway {args.gateway!r}: use unix:/path.sock or http(s)://URL")

    sockets, unix_path = _bind(args.listen)
    if agent_user is not None:
        # after binding, so the socket keeps the runner's group
        _drop_groups(agent_user)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    boot = {"digest": digest, "on_shutdown": stop.set}
    switch = _Switch(web.Application([(r"/.*", _BootHandler, boot)]))
    server = HTTPServer(switch, max_body_size=MAX_BODY_BYTES)
    server.add_sockets(sockets)
    # load the SDK off the loop, so health answers ("starting") meanwhile
    agent_mod: Any = await asyncio.to_thread(importlib.import_module, ".agent", __package__)
    server_mod: Any = await asyncio.to_thread(importlib.import_module, ".server", __package__)
    RunnerSettings, AgentRunner = agent_mod.RunnerSettings, agent_mod.AgentRunner
    runner = AgentRunner(
        RunnerSettings(
            config=config,
            workspace=args.workspace.resolve(),
            state_dir=args.state_dir.resolve(),
            base_url=base_url,
            session_token=session_token,
            resume=args.resume,
            agent_user=agent_user,
            adopt_workspace=args.adopt_workspace,
            workspace_readonly=args.workspace_readonly,
            isolated=isolated,
            network=network,
            jupyter_tools=jupyter_tools,
            kernel_tools=kernel_tools,
        )
    )
    checkpoints = None
    if args.checkpoint_dir is not None:
        history_mod: Any = importlib.import_module("..checkpoints", __package__)
        checkpoints = await asyncio.to_thread(
            functools.partial(
                history_mod.CheckpointHistory,
                _private_dir(args.checkpoint_dir),
                args.workspace.resolve(),
                args.checkpoint_max_bytes,
                # no --agent-user: the CLI's tools run as the runner's own uid (a pod),
                # so they could write the store: every restore reads it checked first
                reachable_by_agent=agent_user is None,
            )
        )
    switch.app = server_mod.make_app(
        runner, digest=digest, on_shutdown=stop.set, checkpoints=checkpoints
    )
    log.info("runner listening on %s (config %s, gateway %s)", args.listen, config.id, base_url)
    runner.start()
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        server.stop()
        await runner.close()
        # event streams end by themselves once the buffer is closed: let them send it all
        await runner.buffer.drained(5)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(server.close_all_connections(), 5)
        if forwarder is not None:
            await forwarder.close()
        if unix_path is not None:
            with contextlib.suppress(OSError):
                os.unlink(unix_path)
    return 0


def _private_dir(path: Path) -> Path:
    """The checkpoint store's folder, the runner's alone (0700; made if missing)."""
    path = path.resolve()
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return asyncio.run(serve(args))
    except UsageError as exc:
        print(f"agcluster runner: {exc}", file=sys.stderr)
        return 2
