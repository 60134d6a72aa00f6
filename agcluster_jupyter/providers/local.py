"""The ``local`` provider: the runner as a subprocess of the server.  No isolation.

The agent sees the host as the agent user does; only the workspace folder is set aside.
It is for development, demos and machines without a container engine, and says so in
health and launch responses.  When the server runs as root the runner drops the claude
CLI to ``agent_user`` (the CLI must not run as root), so the workspace and the agent state
must be reachable by that user.
"""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import signal
import stat
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from ..errors import BadRequest
from ..runner.protocol import (
    ENV_CONFIG,
    ENV_ISOLATED,
    ENV_JUPYTER_TOOLS,
    ENV_NETWORK,
    ENV_RUNNER_TOKEN_SHA256,
    ENV_SESSION_TOKEN,
    jupyter_tools_env,
    token_digest,
)
from .base import (
    Provider,
    ProviderHealth,
    RunnerHandle,
    RunnerSpec,
    RunnerStartError,
    RunnerStatus,
)

__all__ = ["LocalProvider", "unreachable_parent"]

NO_ISOLATION = (
    "local provider: agents run as subprocesses of the Jupyter server with no isolation "
    "(they can read what the agent user can read on this machine)"
)


def unreachable_parent(path: Path, uid: int, gid: int) -> Path | None:
    """The first folder on the way to ``path`` that ``uid``/``gid`` cannot enter, if any."""
    for folder in [*reversed(path.parents), path]:
        try:
            st = folder.stat()
        except FileNotFoundError:
            return None
        if st.st_uid == uid:
            ok = bool(st.st_mode & stat.S_IXUSR)
        elif st.st_gid == gid:
            ok = bool(st.st_mode & stat.S_IXGRP)
        else:
            ok = bool(st.st_mode & stat.S_IXOTH)
        if not ok:
            return folder
    return None


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    os.chown(path, uid, gid, follow_symlinks=False)
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            os.chown(os.path.join(dirpath, name), uid, gid, follow_symlinks=False)


class LocalProvider(Provider):
    name = "local"
    isolated = False
    workspace_mount = None

    def __init__(
        self,
        *,
        agent_user: str = "nobody",
        start_timeout: float = 60.0,
        python: str = sys.executable,
    ) -> None:
        self.start_timeout = start_timeout
        self.python = python
        self._procs: dict[str, asyncio.subprocess.Process] = {}
        # the CLI refuses to run as root in bypassPermissions mode, and an agent should
        # not be root anyway: drop to agent_user when we are root
        self.agent_user: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            self.agent_user = pwd.getpwnam(agent_user)
        # a server of the agent's own uid keeps no control token on disk: the agent could
        # read it there (a restarted server then relaunches the runner, resuming)
        self.persists_control_token = self.agent_user is not None

    #: why this provider cannot start agents here (the one line that fixes it), or None
    refusal: str | None = None

    def reach_problem(self, path: Path) -> str | None:
        """Why the agent user cannot reach ``path`` (a folder or the CLI), or None."""
        if self.agent_user is None:
            return None
        user = self.agent_user
        blocked = unreachable_parent(path, user.pw_uid, user.pw_gid)
        if blocked is not None:
            return f"the agent user {user.pw_name!r} cannot enter {blocked}"
        return None

    async def health(self) -> ProviderHealth:
        if self.refusal is not None:
            return ProviderHealth(ok=False, isolated=False, detail=self.refusal)
        return ProviderHealth(ok=True, isolated=False, detail=NO_ISOLATION)

    def check_folder(self, folder: Path) -> None:
        user = self.agent_user
        if user is None:
            return  # the agent runs as the Jupyter user, whose tree it is
        if folder.stat().st_uid != user.pw_uid or unreachable_parent(
            folder, user.pw_uid, user.pw_gid
        ):
            raise BadRequest(
                f"Jupyter runs as root, so the local provider runs the agent as "
                f"{user.pw_name!r}, who does not own this folder (or cannot reach it); "
                "use the docker provider, or a folder of that user's",
                field="workspace",
            )

    def prepare_workspace(self, workspace: Path) -> None:
        """Make the workspace the agent user's (only needed when the server is root)."""
        if self.agent_user is None:
            return
        user = self.agent_user
        blocked = unreachable_parent(workspace, user.pw_uid, user.pw_gid)
        if blocked is not None:
            raise RunnerStartError(
                f"the agent user {user.pw_name!r} cannot enter {blocked}, so it cannot "
                f"reach its workspace {workspace}; set AgClusterApp.workspace_root to a "
                "folder it can reach (or make the parents world-traversable)"
            )
        _chown_tree(workspace, user.pw_uid, user.pw_gid)

    def _command(self, spec: RunnerSpec, socket_path: Path) -> list[str]:
        cmd = [
            self.python,
            "-m",
            "agcluster_jupyter.runner",
            "--listen",
            f"unix:{socket_path}",
            "--workspace",
            str(spec.workspace),
            "--state-dir",
            str(spec.state_dir),
            "--gateway",
            spec.gateway,
        ]
        if spec.resume:
            cmd += ["--resume", spec.resume]
        if self.agent_user is not None:
            cmd += ["--agent-user", self.agent_user.pw_name]
        return cmd

    def _env(self, spec: RunnerSpec) -> dict[str, str]:
        # a clean environment: the server's own (which may hold ANTHROPIC_API_KEY) never
        # reaches the runner or the CLI
        env = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            "HOME": str(spec.state_dir / "home"),
            "PYTHONUNBUFFERED": "1",
            ENV_CONFIG: spec.config.model_dump_json(),
            ENV_SESSION_TOKEN: spec.session_token,
            ENV_RUNNER_TOKEN_SHA256: token_digest(spec.control_token),
            # what the agent is told: no isolation, and the machine's network
            ENV_ISOLATED: "0",
            ENV_NETWORK: "1",
            ENV_JUPYTER_TOOLS: jupyter_tools_env(spec.jupyter_tools, spec.kernel_tools),
        }
        if "PYTHONPATH" in os.environ:
            env["PYTHONPATH"] = os.environ["PYTHONPATH"]
        return env

    async def create(self, spec: RunnerSpec) -> RunnerHandle:
        if self.refusal is not None:
            raise RunnerStartError(self.refusal)
        if not spec.folder_workspace:  # a folder of the user's tree keeps its owner
            await asyncio.to_thread(self.prepare_workspace, spec.workspace)
        spec.state_dir.mkdir(parents=True, exist_ok=True)
        if self.agent_user is not None:
            user = self.agent_user
            blocked = unreachable_parent(spec.state_dir, user.pw_uid, user.pw_gid)
            if blocked is not None:
                raise RunnerStartError(
                    f"the agent user {user.pw_name!r} cannot enter {blocked}, so the CLI "
                    f"cannot keep its state in {spec.state_dir}; set "
                    "AgClusterApp.agent_state_root to a folder it can reach"
                )
        spec.socket_dir.mkdir(parents=True, exist_ok=True)
        socket_path = spec.socket_dir / "runner.sock"
        socket_path.unlink(missing_ok=True)
        log_path = spec.state_dir / "runner.log"
        with log_path.open("ab") as log_file:
            proc = await asyncio.create_subprocess_exec(
                *self._command(spec, socket_path),
                env=self._env(spec),
                cwd=str(spec.workspace),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                # its own process group: the server's signals don't reach it, and stop()
                # can end the runner, the CLI and every tool process together
                start_new_session=True,
            )
        handle = RunnerHandle(
            provider=self.name,
            session_id=spec.session_id,
            agent_id=f"local-{proc.pid}",
            endpoint=f"unix:{socket_path}",
            token=spec.control_token,
            extra={"pid": proc.pid, "log": str(log_path)},
        )
        self._procs[spec.session_id] = proc
        try:
            await self._wait_healthy(handle, proc, log_path)
        except BaseException:
            await self.stop(handle)
            raise
        return handle

    async def _wait_healthy(
        self, handle: RunnerHandle, proc: asyncio.subprocess.Process, log_path: Path
    ) -> None:
        async def alive() -> None:
            if proc.returncode is not None:
                raise RunnerStartError(
                    f"the runner exited with code {proc.returncode}: {_tail(log_path)}"
                )

        try:
            await self.wait_ready(
                handle, self.start_timeout, poll=0.02, check_alive=alive, check_every=0.0
            )
        except TimeoutError as exc:
            raise RunnerStartError(
                f"the runner did not become healthy in {self.start_timeout:.0f} s {exc}".strip()
            ) from None

    def _pid(self, handle: RunnerHandle) -> int:
        return int(handle.extra.get("pid") or handle.agent_id.removeprefix("local-"))

    async def stop(self, handle: RunnerHandle) -> None:
        pid = self._pid(handle)
        proc = self._procs.pop(handle.session_id, None)
        try:
            async with self.channel(handle, timeout=3.0) as client:
                await client.post("/shutdown")
        except httpx.HTTPError:
            pass
        if await self._wait_exit(pid, proc, 5.0):
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(pid, sig)
            except (ProcessLookupError, PermissionError):
                return
            if await self._wait_exit(pid, proc, 3.0):
                return

    async def _wait_exit(
        self, pid: int, proc: asyncio.subprocess.Process | None, timeout: float
    ) -> bool:
        if proc is not None:
            try:
                await asyncio.wait_for(proc.wait(), timeout)
                return True
            except asyncio.TimeoutError:
                return False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _alive(pid):
                return True
            await asyncio.sleep(0.05)
        return False

    async def status(self, handle: RunnerHandle) -> RunnerStatus:
        proc = self._procs.get(handle.session_id)
        if proc is not None:
            return RunnerStatus.RUNNING if proc.returncode is None else RunnerStatus.EXITED
        return RunnerStatus.RUNNING if _alive(self._pid(handle)) else RunnerStatus.MISSING

    async def list_runners(self, labels: dict[str, str]) -> list[RunnerHandle]:
        # local runners carry no labels; sessions re-adopt them from their records
        return []

    async def resources(self, handle: RunnerHandle) -> dict[str, Any]:
        return await asyncio.to_thread(_group_memory, self._pid(handle))


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
        return state not in {"Z", "X"}
    except (FileNotFoundError, IndexError, ProcessLookupError):
        return False


def _group_memory(pgid: int) -> dict[str, Any]:
    """Resident memory of every process in the runner's process group (Linux /proc)."""
    rss = 0
    count = 0
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            if int(fields[2]) != pgid:
                continue
            with open(f"/proc/{entry}/statm", encoding="ascii") as fh:
                rss += int(fh.read().split()[1]) * page
            count += 1
        except (OSError, IndexError, ValueError):
            continue
    return {"memory_bytes": rss, "processes": count} if count else {}


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no runner log)"
    return json.dumps("\n".join(text.splitlines()[-lines:]))
