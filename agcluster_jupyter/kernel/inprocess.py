"""The fallback where no Jupyter server can be reached: agcluster inside this process.

Plain IPython and other notebook front ends have no Jupyter server behind them.  Rather
than a second implementation, ``InProcessServer`` runs jupyter_server's ``ServerApp`` with
only the agcluster extension on its own event loop in a daemon thread: the same handlers,
session manager, gateway and providers, on 127.0.0.1 with a random token.  Its sessions end
with the process (``stop()`` runs at exit).

Settings come from the Jupyter config files and ``ANTHROPIC_API_KEY`` from the environment,
like any server.  What it forces, and why:

- a private runtime dir: no ``jpserver-<pid>.json`` for other kernels' discovery to find;
- a private ``state_root`` and ``socket_root`` (and ``agent_state_root`` unless configured),
  removed by ``stop()``: a real server's recovery and orphan removal would otherwise take
  its sessions for theirs (or it theirs), and nothing could resume them later anyway;
- ``stop_sessions_on_shutdown``: nothing would ever re-adopt its runners;
- as root, a ``workspace_root`` the agent user can reach when the default one (in the
  working directory, often ``/root``) is closed to it.

``default_client()`` is what a kernel calls: the discovered server's API if it answers,
else this process's own server (started once).
"""

from __future__ import annotations

import asyncio
import concurrent.futures.thread  # noqa: F401 - imported before our exit hook, see _register
import logging
import os
import pwd
import secrets
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from ..errors import first_line
from .client import AgClusterClient, AgClusterClientError, ApiError, ServerNotFound, find_server

__all__ = [
    "InProcessServer",
    "InProcessServerError",
    "ROOT_WORKSPACE_ROOT",
    "default_client",
    "default_server",
]

log = logging.getLogger(__name__)

#: workspaces of a root process whose working directory the agent user cannot enter
ROOT_WORKSPACE_ROOT = "/var/tmp/agcluster-workspaces"
#: how long default_client() waits for a discovered server's health answer
_PROBE_TIMEOUT = 5.0


class InProcessServerError(AgClusterClientError):
    """The in-process server could not start."""


def _fit_settings(app: Any, base: Path) -> None:
    """Defaults for a server that lives and dies with this process; configured values are
    left alone."""
    if not app.trait_has_value("agent_state_root"):
        # the CLI's transcripts only serve to resume sessions of this process's records
        app.agent_state_root = str(base / "agent-state")
    # as root the claude CLI runs as agent_user: the default workspace root (in the
    # working directory, often /root) may be out of its reach
    if os.geteuid() != 0 or app.trait_has_value("workspace_root"):
        return
    from ..providers.local import unreachable_parent

    try:
        user = pwd.getpwnam(app.agent_user)
    except KeyError:
        return  # a numeric uid is for docker, which mounts the workspace itself
    blocked = unreachable_parent(Path(app.workspace_root), user.pw_uid, user.pw_gid)
    if blocked is not None:
        app.log.warning(
            "agcluster: the agent user %r cannot enter %s; workspaces go to %s",
            user.pw_name,
            blocked,
            ROOT_WORKSPACE_ROOT,
        )
        app.workspace_root = ROOT_WORKSPACE_ROOT


def _server_app(base: Path) -> Any:
    """A ``ServerApp`` fit to live in a thread of somebody else's process."""
    # imported here: jupyter_server is slow to import and only needed for the fallback
    from jupyter_server.serverapp import ServerApp

    class InProcessServerApp(ServerApp):
        def init_signal(self) -> None:
            # signal.signal() works only in the main thread, and the host process (IPython,
            # a kernel) owns its signals: InProcessServer.stop() ends this server
            pass

        def find_server_extensions(self) -> None:
            # agcluster only: other installed extensions (jupyterlab, ...) have no use here
            # and would slow the start
            pass

        def init_server_extensions(self) -> None:
            self.jpserver_extensions = {"agcluster_jupyter": True}
            super().init_server_extensions()

        def load_server_extensions(self) -> None:
            # linked (settings read) but not yet initialized: the last moment to adjust
            for app in self.extension_manager.extension_apps.get("agcluster_jupyter", ()):
                _fit_settings(app, base)
            super().load_server_extensions()

    return InProcessServerApp(runtime_dir=str(base / "runtime"))


class InProcessServer:
    """A Jupyter server with agcluster, inside this process, on a thread of its own.

    ``argv`` is extra settings in ``--Class.trait=value`` form
    (``--AgClusterApp.provider=local``); they win over the forced ones and the config files.
    """

    def __init__(self, argv: Sequence[str] = (), *, root_dir: str | Path | None = None) -> None:
        self.argv = list(argv)
        self.root_dir = Path(root_dir) if root_dir is not None else Path.cwd()
        self.token = secrets.token_urlsafe(32)
        #: ``http://127.0.0.1:<port>/`` once started
        self.url = ""
        #: the private folder (runtime dir, state, sockets), removed by ``stop()``
        self.base: Path | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._app: Any = None
        self._error: BaseException | None = None
        self._bound = threading.Event()
        self._stop_lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def client(self, **kwargs: Any) -> AgClusterClient:
        return AgClusterClient(self.url, self.token, **kwargs)

    def __enter__(self) -> InProcessServer:
        return self if self._thread is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- start ---------------------------------------------------------------------------

    def _argv(self, base: Path) -> list[str]:
        argv = [
            "--ServerApp.ip=127.0.0.1",
            "--ServerApp.port=0",  # the OS picks a free one
            "--ServerApp.port_retries=0",
            "--ServerApp.open_browser=False",
            # the host's console is the user's: warnings only (such as "no isolation")
            "--ServerApp.log_level=WARN",
            "--AgClusterApp.log_level=WARN",
            f"--ServerApp.root_dir={self.root_dir}",
            f"--IdentityProvider.token={self.token}",
            f"--AgClusterApp.state_root={base / 'state'}",
            f"--AgClusterApp.socket_root={base / 's'}",
            "--AgClusterApp.stop_sessions_on_shutdown=True",
        ]
        if os.geteuid() == 0:
            argv.append("--ServerApp.allow_root=True")
        # traitlets refuses a setting given twice: the caller's replaces ours
        theirs = {arg.partition("=")[0] for arg in self.argv}
        return [arg for arg in argv if arg.partition("=")[0] not in theirs] + self.argv

    def _serve(self, argv: list[str], base: Path) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)  # ServerApp takes IOLoop.current() as its loop
        self._loop = loop
        try:
            self._app = app = _server_app(base)
            app.initialize(argv)
            self.url = f"http://127.0.0.1:{app.port}{app.base_url}"
            self._bound.set()
            app.start_app()
            app.start_ioloop()  # until app.stop() has cleaned up
        except BaseException as exc:  # noqa: BLE001 - reported by start()
            self._error = exc
        finally:
            self._bound.set()
            try:
                for task in asyncio.all_tasks(loop):
                    task.cancel()
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                loop.close()

    def _failed(self, why: str) -> InProcessServerError:
        error = self._error
        if isinstance(error, SystemExit):
            why += " (jupyter_server exited; see its log above)"
        elif error is not None:
            why += f": {type(error).__name__}"
            if str(error).strip():
                why += f": {first_line(error)}"
        self.stop(timeout=15.0)
        return InProcessServerError(f"the in-process agcluster server did not start: {why}")

    def start(self, timeout: float = 60.0) -> InProcessServer:
        """Start serving; returns once ``GET api/agcluster/health`` answers 200."""
        if self._thread is not None:
            raise RuntimeError("this InProcessServer was started already")
        started = time.monotonic()
        deadline = started + timeout
        self.base = base = Path(tempfile.mkdtemp(prefix="agcluster-inprocess-"))
        base.chmod(0o755)  # as root the agent user must reach the session sockets under it
        thread = threading.Thread(
            target=self._serve, args=(self._argv(base), base), name="agcluster-inprocess"
        )
        thread.daemon = True  # never holds the process open; _at_exit stops it first
        self._thread = thread
        _register(self)
        thread.start()
        while not self._bound.wait(0.05):
            if time.monotonic() > deadline:
                raise self._failed(f"no port within {timeout:.0f} s")
        if not thread.is_alive() or not self.url:
            raise self._failed("the server thread ended")
        last = ""
        with httpx.Client(timeout=5.0, headers={"Authorization": f"token {self.token}"}) as http:
            while True:
                try:
                    response = http.get(self.url + "api/agcluster/health")
                    if response.status_code == 200:
                        break
                    last = f"health answered {response.status_code}"
                except httpx.HTTPError as exc:
                    last = str(exc) or type(exc).__name__
                if not thread.is_alive():
                    raise self._failed("the server thread ended")
                if time.monotonic() > deadline:
                    raise self._failed(f"no health answer within {timeout:.0f} s ({last})")
                time.sleep(0.05)
        log.info(
            "in-process agcluster server at %s in %.2f s", self.url, time.monotonic() - started
        )
        return self

    # -- stop ----------------------------------------------------------------------------

    def stop(self, timeout: float = 60.0) -> None:
        """Stop every session (runners, containers) and the server; idempotent."""
        with self._stop_lock:
            thread, loop, app = self._thread, self._loop, self._app
            if thread is None:
                return
            if thread.is_alive() and loop is not None and app is not None:
                # the extension's stop_extension: the manager stops every session
                try:
                    loop.call_soon_threadsafe(app.stop)
                except RuntimeError:
                    pass  # the loop is closed: the thread is ending anyway
                thread.join(timeout)
                if thread.is_alive():
                    log.warning("the in-process agcluster server did not stop in %.0f s", timeout)
                    try:
                        loop.call_soon_threadsafe(loop.stop)
                    except RuntimeError:
                        pass
                    thread.join(5.0)
            else:
                thread.join(timeout)
            self._thread = None
            _unregister(self)
            if not thread.is_alive() and self.base is not None:
                shutil.rmtree(self.base, ignore_errors=True)


# ---------------------------------------------------------------- at exit

_live: set[InProcessServer] = set()
_live_lock = threading.Lock()
_hooked = False


def _at_exit() -> None:
    for server in list(_live):
        try:
            server.stop()
        except Exception:
            log.exception("stopping the in-process agcluster server at exit")


def _register(server: InProcessServer) -> None:
    global _hooked
    with _live_lock:
        _live.add(server)
        if not _hooked:
            # threading's exit hooks run before concurrent.futures refuses new work at exit
            # (its own hook, registered when it was imported above, runs after ours: they
            # run in reverse); atexit would be too late for asyncio.to_thread and the docker
            # provider's executor, which stopping sessions needs
            register = getattr(threading, "_register_atexit", None)
            if register is not None:
                register(_at_exit)
            else:  # pragma: no cover - CPython has had it since 3.9
                import atexit

                atexit.register(_at_exit)
            _hooked = True


def _unregister(server: InProcessServer) -> None:
    with _live_lock:
        _live.discard(server)


# ---------------------------------------------------------------- the kernel's client

_default: InProcessServer | None = None
_default_lock = threading.Lock()


def default_server() -> InProcessServer | None:
    """The in-process server ``default_client()`` started, while it runs."""
    server = _default
    return server if server is not None and server.running else None


def default_client(**kwargs: Any) -> AgClusterClient:
    """A client of the Jupyter server this kernel runs under if it answers, else of an
    in-process server (started on first need, then reused so sessions stay reachable).

    ``kwargs`` go to ``AgClusterClient`` (``timeout``, ``transport``).
    """
    global _default
    with _default_lock:
        server = default_server()
        if server is not None:
            return server.client(**kwargs)
        try:
            info = find_server()
        except ServerNotFound:
            why = "no Jupyter server found"
        else:
            try:
                with AgClusterClient(info.url, info.token, timeout=_PROBE_TIMEOUT) as probe:
                    probe.health()
                return AgClusterClient(info.url, info.token, **kwargs)
            except ServerNotFound:
                why = f"the Jupyter server at {info.url} cannot be reached"
            except ApiError as exc:
                if exc.status != 404:
                    raise  # a wrong token is the user's to fix, not to hide
                why = f"the Jupyter server at {info.url} has no agcluster extension"
        server = InProcessServer().start()
        _default = server
    client = server.client(**kwargs)
    try:
        health = client.health()
        provider = f"{health.get('provider', '?')} provider"
        if not health.get("isolated", True):
            provider += ", no isolation"
    except AgClusterClientError:
        provider = "provider unknown"
    print(
        f"agcluster: {why}; agents run inside this Python process ({provider}) and end with it",
        file=sys.stderr,
    )
    return client
