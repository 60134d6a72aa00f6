"""A real ``jupyter server`` process with the extension, for tests and benchmarks.

It runs on its own port with its own folders (all under ``base``, world-traversable so
an unprivileged agent user can reach workspaces and agent state when we are root), the
model's key in its environment only, and a token for clients.  ``stop()`` ends it the
way an operator would (SIGTERM) and reports anything it started that outlived it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

__all__ = [
    "JupyterServerProcess",
    "agent_folders",
    "descendants",
    "free_port",
    "process_start",
    "runner_pids",
]

#: the folders a server's AgClusterApp settings point at, by trait
_FOLDERS = {
    "workspace_root": "workspaces",
    "agent_state_root": "agent-state",
    "socket_root": "s",
    "state_root": "state",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def agent_folders(base: Path) -> dict[str, Path]:
    """``{trait: folder}`` under ``base``, made world-traversable (0755)."""
    base.chmod(0o755)
    folders = {trait: base / name for trait, name in _FOLDERS.items()}
    for path in folders.values():
        path.mkdir(exist_ok=True)
        path.chmod(0o755)
    return folders


def process_start(pid: int) -> str | None:
    """The start time of a live process (tells a reused pid apart); None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if stat[0] == "Z" else stat[19]


def descendants(pid: int) -> dict[int, str]:
    """``pid``'s live descendants (not itself), with their start times."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            children.setdefault(int(stat[1]), []).append(int(entry))
    found: dict[int, str] = {}
    todo = list(children.get(pid, []))
    while todo:
        current = todo.pop()
        start = process_start(current)
        if start is not None:
            found[current] = start
        todo.extend(children.get(current, []))
    return found


def runner_pids(under: str = "") -> set[int]:
    """Live agent runner processes, only those whose command line mentions ``under``."""
    pids = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if b"agcluster_jupyter.runner" in cmdline and under.encode() in cmdline:
                if process_start(int(entry)) is not None:
                    pids.add(int(entry))
    return pids


class JupyterServerProcess:
    """``jupyter server`` with agcluster on ``provider`` against ``model_url``."""

    def __init__(
        self,
        model_url: str,
        model_key: str,
        *,
        base: Path | None = None,
        token: str = "agcluster-test-token",
        provider: str = "local",
        extra_args: Sequence[str] = (),
        user: int | None = None,
        extra_groups: Sequence[int] = (),
        python: str = sys.executable,
    ) -> None:
        self.base = base or Path(tempfile.mkdtemp(prefix="agc-server-", dir="/tmp"))
        self.folders = agent_folders(self.base)
        self.token = token
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/api/agcluster/"
        self.log_path = self.base / f"jupyter-server-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        #: every descendant seen while it ran (pid → start time)
        self.seen: dict[int, str] = {}
        root = self.base / "root"
        root.mkdir(exist_ok=True)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
        self.env.update(ANTHROPIC_API_KEY=model_key, JUPYTER_PLATFORM_DIRS="1")
        #: run the server as this uid (its own gid) instead of ours: a normal user's server
        self.user = user
        self.extra_groups = list(extra_groups)
        if user is not None:
            home = self.base / "home"
            home.mkdir(exist_ok=True)
            self.env.update(
                HOME=str(home),
                JUPYTER_DATA_DIR=str(home / "data"),
                JUPYTER_RUNTIME_DIR=str(home / "runtime"),
                JUPYTER_CONFIG_DIR=str(home / "config"),
                IPYTHONDIR=str(home / "ipython"),
                # the extension's config lives in this environment's prefix, which
                # another Python (see ``python``) does not search by itself
                JUPYTER_CONFIG_PATH=str(Path(sys.prefix) / "etc" / "jupyter"),
            )
            for path in [self.base, *self.base.rglob("*")]:
                os.chown(path, user, user)
        self.cmd = [
            python,
            "-m",
            "jupyter_server",
            f"--ServerApp.port={self.port}",
            "--ServerApp.ip=127.0.0.1",
            "--ServerApp.open_browser=False",
            "--ServerApp.allow_root=True",
            f"--ServerApp.root_dir={root}",
            f"--IdentityProvider.token={token}",
            f"--AgClusterApp.provider={provider}",
            f"--AgClusterApp.anthropic_base_url={model_url}",
            *(f"--AgClusterApp.{trait}={path}" for trait, path in self.folders.items()),
            *extra_args,
        ]

    def set_option(self, name: str, value: object | None) -> None:
        """Set ``--<name>=<value>`` on the command line, replacing an earlier one (an
        option given twice is a config error); ``None`` removes it."""
        prefix = f"--{name}="
        self.cmd = [arg for arg in self.cmd if not arg.startswith(prefix)]
        if value is not None:
            self.cmd.append(f"{prefix}{value}")

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    def start(self, timeout: float = 60.0) -> None:
        with self.log_path.open("ab") as log:
            as_user: dict[str, Any] = {}
            if self.user is not None:
                as_user = {"user": self.user, "group": self.user}
                as_user["extra_groups"] = self.extra_groups
            self.proc = subprocess.Popen(self.cmd, env=self.env, stdout=log, stderr=log, **as_user)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.get("health").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError("jupyter server did not start:\n" + self.tail())

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(self.url + path, headers=self.headers, timeout=60, **kwargs)

    def post(
        self, path: str, body: Any, headers: dict[str, str] | None = None, timeout: float = 120
    ) -> httpx.Response:
        return httpx.post(
            self.url + path, json=body, headers={**self.headers, **(headers or {})}, timeout=timeout
        )

    def note_children(self) -> None:
        if self.proc is not None:
            self.seen.update(descendants(self.proc.pid))

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> list[int]:
        """End the server with ``sig``; kill and return whatever it started that outlived
        it (runners kept on purpose with ``stop_sessions_on_shutdown=False`` excepted)."""
        if self.proc is None:
            return []
        self.note_children()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if any("stop_sessions_on_shutdown=False" in arg for arg in self.cmd):
            return []
        deadline = time.monotonic() + 5
        while True:
            left = {pid for pid, start in self.seen.items() if process_start(pid) == start}
            left |= runner_pids(str(self.base))
            if not left or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return sorted(left)
