"""The user's kernels, as the kernel tools reach them: found, checked, run, bounded.

The kernel of a notebook is the one Jupyter's session manager has for that path (the one
the user's page runs); nothing here starts, restarts or interrupts a kernel except to stop
a call that ran past its timeout.  A grant is of one kernel *process*: the kernel's id and
its process id, so a restart (same id, a new process, a fresh namespace the user has not
looked at) needs a new grant.

Execution goes through a kernel client of this server's own: the kernel broadcasts its
outputs to every client, the page included, but a page shows only the outputs of its own
requests, so the results are collected here and written into the notebook by the caller.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from jupyter_client.session import Session
from jupyter_core.utils import ensure_async

__all__ = ["Execution", "KernelDoor", "KernelRef", "NoKernel"]


class NoKernel(LookupError):
    """The notebook has no running kernel (the text says so for the agent)."""


@dataclass(frozen=True)
class KernelRef:
    """One kernel process of one notebook."""

    kernel_id: str
    #: the kernel's process: a restart keeps the id and starts another one
    pid: int | None
    language: str = ""

    def grant(self) -> dict[str, Any]:
        return {"kernel_id": self.kernel_id, "pid": self.pid}

    def matches(self, grant: Any) -> bool:
        return (
            isinstance(grant, dict)
            and grant.get("kernel_id") == self.kernel_id
            and grant.get("pid") == self.pid
        )


@dataclass
class Execution:
    """What one execute request gave back."""

    status: str = "ok"  # ok | error | aborted | timeout | busy (nothing was sent)
    execution_count: int | None = None
    #: nbformat output dicts, in order (consecutive stream text merged)
    outputs: list[dict[str, Any]] = field(default_factory=list)
    user_expressions: dict[str, Any] = field(default_factory=dict)
    duration_ms: int = 0


class KernelDoor:
    """This server's kernels and sessions (``ServerApp.kernel_manager``, ``.session_manager``)."""

    def __init__(self, kernel_manager: Any, session_manager: Any) -> None:
        self.kernels = kernel_manager
        self.sessions = session_manager
        #: one request of ours per kernel at a time (the kernel runs one at a time anyway;
        #: this keeps a second call of ours from counting the first's run as its wait)
        self._running: dict[str, asyncio.Lock] = {}

    async def notebooks_running(self) -> list[str]:
        """The notebooks that have a running kernel now (their tree paths)."""
        return sorted(
            str(session["path"])
            for session in await ensure_async(self.sessions.list_sessions())
            if session.get("type") == "notebook" and (session.get("kernel") or {}).get("id")
        )

    async def kernel_of(self, api_path: str) -> KernelRef:
        """The running kernel of the notebook at ``api_path``, or :class:`NoKernel`."""
        for session in await ensure_async(self.sessions.list_sessions()):
            kernel = session.get("kernel") or {}
            if session.get("path") == api_path and kernel.get("id"):
                kernel_id = str(kernel["id"])
                break
        else:
            raise NoKernel(
                f"no kernel: {api_path!r} has no running kernel; ask the user to open it "
                "and start its kernel"
            )
        if kernel_id not in self.kernels:
            raise NoKernel(f"no kernel: the kernel of {api_path!r} is gone")
        manager = self.kernels.get_kernel(kernel_id)
        provisioner = getattr(manager, "provisioner", None)
        pid = getattr(provisioner, "pid", None)
        spec = getattr(manager, "kernel_spec", None)
        return KernelRef(kernel_id, pid, str(getattr(spec, "language", "") or ""))

    async def execute(
        self,
        ref: KernelRef,
        code: str,
        *,
        timeout: float,
        silent: bool = False,
        store_history: bool = True,
        user_expressions: dict[str, str] | None = None,
    ) -> Execution:
        """Run ``code`` in the kernel and collect its outputs; past ``timeout`` seconds the
        kernel is interrupted and the execution's status is ``timeout``.  While another
        request of ours runs there it waits (up to ``timeout``: then ``busy``)."""
        lock = self._running.setdefault(ref.kernel_id, asyncio.Lock())
        started = time.monotonic()
        try:
            await asyncio.wait_for(lock.acquire(), timeout)
        except asyncio.TimeoutError:
            return Execution(status="busy", duration_ms=int((time.monotonic() - started) * 1000))
        try:
            return await self._execute(
                ref,
                code,
                timeout=max(0.1, timeout - (time.monotonic() - started)),
                silent=silent,
                store_history=store_history,
                user_expressions=user_expressions,
            )
        finally:
            lock.release()

    async def _execute(
        self,
        ref: KernelRef,
        code: str,
        *,
        timeout: float,
        silent: bool,
        store_history: bool,
        user_expressions: dict[str, str] | None,
    ) -> Execution:
        manager = self.kernels.get_kernel(ref.kernel_id)
        # a session of its own: ``manager.client()`` copies the manager's session, whose
        # id is the shell socket's identity, so every other client made that way in this
        # process (an extension's) would share one identity and take each other's replies
        session = Session(
            key=manager.session.key, signature_scheme=manager.session.signature_scheme
        )
        client = manager.client(session=session)
        client.start_channels()
        started = time.monotonic()
        result = Execution()
        try:
            try:
                await asyncio.wait_for(client.wait_for_ready(), timeout=min(timeout, 30.0))
            except (asyncio.TimeoutError, RuntimeError):
                # busy with the user's own cell (or dying): nothing was sent to run, and
                # the user's cell is not ours to interrupt
                result.status = "busy"
                return result
            msg_id = client.execute(
                code,
                silent=silent,
                store_history=store_history,
                user_expressions=user_expressions or {},
                allow_stdin=False,
            )
            try:
                await asyncio.wait_for(self._collect(client, msg_id, result), timeout)
            except asyncio.TimeoutError:
                await ensure_async(self.kernels.interrupt_kernel(ref.kernel_id))
                result.status = "timeout"
                # the interrupted request still ends (with an error); wait briefly for it
                try:
                    await asyncio.wait_for(self._collect(client, msg_id, Execution()), 10.0)
                except asyncio.TimeoutError:
                    pass
        finally:
            client.stop_channels()
            result.duration_ms = int((time.monotonic() - started) * 1000)
        return result

    async def _collect(self, client: Any, msg_id: str, result: Execution) -> None:
        idle = False
        reply: dict[str, Any] | None = None
        while not idle:
            msg = await client.get_iopub_msg()
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "status" and content.get("execution_state") == "idle":
                idle = True
            elif kind == "stream":
                last = result.outputs[-1] if result.outputs else None
                if last and last["output_type"] == "stream" and last["name"] == content["name"]:
                    last["text"] += content.get("text", "")
                else:
                    result.outputs.append(
                        {"output_type": "stream", "name": content["name"], "text": content["text"]}
                    )
            elif kind in ("execute_result", "display_data"):
                output = {
                    "output_type": kind,
                    "data": content.get("data", {}),
                    "metadata": content.get("metadata", {}),
                }
                if kind == "execute_result":
                    output["execution_count"] = content.get("execution_count")
                result.outputs.append(output)
            elif kind == "error":
                result.outputs.append(
                    {
                        "output_type": "error",
                        "ename": content.get("ename", ""),
                        "evalue": content.get("evalue", ""),
                        "traceback": content.get("traceback", []),
                    }
                )
            elif kind == "clear_output":
                result.outputs.clear()
        while reply is None:
            msg = await client.get_shell_msg()
            if msg.get("parent_header", {}).get("msg_id") == msg_id:
                reply = msg["content"]
        if result.status != "timeout":
            result.status = str(reply.get("status", "ok"))
        result.execution_count = reply.get("execution_count")
        result.user_expressions = reply.get("user_expressions") or {}
