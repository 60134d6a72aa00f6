"""A stand-in for a cluster node or a Fly host: runs the real agent runner of a pod or a
machine as a local process, so the fakes of the Kubernetes and Fly APIs
(:mod:`.fake_kubernetes`, :mod:`.fake_fly`) carry the whole session flow: launch, chat
through the gateway's TCP listener, files through the runner, stop, resume, purge.

What a container would give, the node imitates with plain host resources:

- **network**: each workload gets its own loopback address (``127.0.0.N``); the runner's
  ``--listen tcp:HOST:PORT`` is bound there, so two pods can use the same port;
- **volumes**: a folder per volume under ``root``; a container path in the command or
  the environment (``/workspace``, ``/home/agent``) is rewritten to its host folder;
- **image**: ``python`` is this interpreter; the image's agent user is ``agent_user``.
  A workload that runs as the agent user (a pod's ``runAsUser``) does so when that user
  can execute this interpreter; otherwise (a pyenv under /root) the runner runs as root
  with ``--agent-user``, so the claude CLI and its tools still run as the agent user.

It isolates nothing: it is for tests only.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import pwd
import shutil
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["LocalNode", "Workload"]

log = logging.getLogger(__name__)


@dataclass
class Workload:
    """One running container: its process, its address and where its output goes."""

    name: str
    address: str
    process: asyncio.subprocess.Process
    log_path: Path
    waiter: asyncio.Task[None] | None = None
    mounts: dict[str, Path] = field(default_factory=dict)


class LocalNode:
    """Runs workloads as local processes; ``on_exit(name, code)`` reports each exit."""

    def __init__(
        self,
        root: Path,
        *,
        agent_user: str = "nobody",
        python: str = sys.executable,
        on_exit: Callable[[str, int], None] | None = None,
    ) -> None:
        self.root = root
        self.agent_user = pwd.getpwnam(agent_user)
        self.python = python
        self.on_exit = on_exit
        self.workloads: dict[str, Workload] = {}
        self._python_ok: bool | None = None
        self._addresses = (f"127.0.0.{n}" for n in itertools.cycle(range(2, 250)))
        root.mkdir(parents=True, exist_ok=True)
        root.chmod(0o755)

    # -- volumes --------------------------------------------------------------------------

    def volume(self, name: str, *, owned_by_agent: bool) -> Path:
        """The host folder of volume ``name`` (created empty the first time): owned by the
        agent user (a Kubernetes volume with ``fsGroup``) or by root (a Fly volume)."""
        path = self.root / "volumes" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.parent.chmod(0o755)
        if not path.exists():
            path.mkdir(mode=0o755)
            if owned_by_agent:
                os.chown(path, self.agent_user.pw_uid, self.agent_user.pw_gid)
        return path

    def remove_volume(self, name: str) -> None:
        shutil.rmtree(self.root / "volumes" / name, ignore_errors=True)

    def scratch(self, name: str) -> Path:
        """An emptyDir-like folder of the agent user (HOME, /tmp)."""
        path = self.root / "scratch" / name
        path.mkdir(parents=True, exist_ok=True)
        path.parent.chmod(0o755)
        os.chown(path, self.agent_user.pw_uid, self.agent_user.pw_gid)
        return path

    # -- processes ------------------------------------------------------------------------

    def _rewrite(self, value: str, mounts: dict[str, Path], address: str) -> str:
        if value.startswith("tcp:"):
            port = value.rsplit(":", 1)[1]
            return f"tcp:{address}:{port}"
        for container_path in sorted(mounts, key=len, reverse=True):
            if value == container_path or value.startswith(container_path + "/"):
                return str(mounts[container_path]) + value[len(container_path) :]
        return value

    def allocate_address(self) -> str:
        return next(self._addresses)

    async def start(
        self,
        name: str,
        command: list[str],
        env: dict[str, str],
        mounts: dict[str, Path],
        *,
        as_agent: bool,
        address: str | None = None,
    ) -> Workload:
        """Start ``command`` (a container's) with its paths mapped to ``mounts``; as the
        agent user (a pod with ``runAsUser``) or as root (an image without USER)."""
        await self.kill(name)
        address = address or self.allocate_address()
        argv = [self._rewrite(arg, mounts, address) for arg in command]
        if argv and argv[0] == "python":
            argv[0] = self.python
        for i, arg in enumerate(argv[:-1]):
            if arg == "--agent-user":
                argv[i + 1] = self.agent_user.pw_name
        environ = {key: self._rewrite(value, mounts, address) for key, value in env.items()}
        environ.setdefault("PATH", os.environ.get("PATH", "/usr/bin:/bin"))
        if "PYTHONPATH" in os.environ:
            environ["PYTHONPATH"] = os.environ["PYTHONPATH"]
        log_path = self.root / "logs" / f"{name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        user = None
        if as_agent and os.geteuid() == 0:
            if await self._agent_can_run_python():
                user = self.agent_user.pw_uid
            elif "--agent-user" not in argv:
                argv += ["--agent-user", self.agent_user.pw_name]
        with log_path.open("ab") as out:
            process = await asyncio.create_subprocess_exec(
                *argv,
                env=environ,
                cwd=str(mounts.get("/workspace", self.root)),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,
                user=user,
                group=self.agent_user.pw_gid if user is not None else None,
                extra_groups=[] if user is not None else None,
            )
        workload = Workload(name, address, process, log_path, mounts=dict(mounts))
        workload.waiter = asyncio.create_task(self._wait(workload), name=f"node-{name}")
        self.workloads[name] = workload
        return workload

    def tail(self, name: str, lines: int = 20) -> str:
        """The last lines a workload wrote (its container log)."""
        try:
            text = (self.root / "logs" / f"{name}.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def usage(self, name: str) -> tuple[float, int] | None:
        """CPU seconds used so far and resident memory (bytes) of a workload's whole
        process group, from /proc (what a container's cgroup would count)."""
        workload = self.workloads.get(name)
        if workload is None:
            return None
        group = workload.process.pid
        ticks = os.sysconf("SC_CLK_TCK")
        cpu, rss = 0.0, 0
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", encoding="utf-8") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
                if int(fields[2]) != group:  # field 5 of stat: the process group
                    continue
                cpu += (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
                with open(f"/proc/{entry}/statm", encoding="utf-8") as fh:
                    rss += int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            except (OSError, IndexError, ValueError):
                continue  # gone meanwhile
        return cpu, rss

    async def _agent_can_run_python(self) -> bool:
        if self._python_ok is None:
            try:
                probe = await asyncio.create_subprocess_exec(
                    self.python,
                    "-c",
                    "import agcluster_jupyter.runner",
                    user=self.agent_user.pw_uid,
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL,
                )
                self._python_ok = await probe.wait() == 0
            except OSError:
                self._python_ok = False
        return self._python_ok

    async def _wait(self, workload: Workload) -> None:
        code = await workload.process.wait()
        if self.workloads.get(workload.name) is workload:
            del self.workloads[workload.name]
            if self.on_exit is not None:
                self.on_exit(workload.name, code)

    async def kill(self, name: str, *, grace: float = 5.0) -> None:
        """Stop a workload as a container runtime does: SIGTERM, then SIGKILL."""
        workload = self.workloads.pop(name, None)
        if workload is None:
            return
        process = workload.process
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), grace)
        except asyncio.TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
        # whatever the runner left in its group (the CLI, tools) goes with it
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        if workload.waiter is not None:
            workload.waiter.cancel()

    async def close(self) -> None:
        for name in list(self.workloads):
            await self.kill(name, grace=2.0)
