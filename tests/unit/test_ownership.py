"""Who owns a session: a live server (its pid, started when it registered), a gone one
(no process, a reused pid, a stale registration from another host), and the lock that
makes recoveries take turns."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from agcluster_jupyter.sessions.ownership import (
    STALE_SECONDS,
    Ownership,
    ServerIdentity,
    process_start_time,
)


def test_a_live_server_and_gone_ones(tmp_path: Path) -> None:
    me = Ownership(tmp_path)
    me.register()
    assert me.is_live(me.server_id) and not me.owned_elsewhere(me.server_id)
    # another server of this host, alive (a real process of ours)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        start = process_start_time(child.pid)
        assert start
        other = Ownership(tmp_path, ServerIdentity("other", child.pid, start, me.me.host))
        other.register()
        assert me.owned_elsewhere("other")
        # a reused pid is not the server: another start time
        reused = dataclasses.replace(other.me, server_id="reused", start="1")
        Ownership(tmp_path, reused).register()
        assert not me.owned_elsewhere("reused")
    finally:
        child.kill()
        child.wait()
    assert not me.owned_elsewhere("other")  # its process is gone
    assert not me.owned_elsewhere("never-registered") and not me.owned_elsewhere("")
    me.forget_dead()
    assert sorted(p.stem for p in (tmp_path / "servers").glob("*.json")) == [me.server_id]


def test_a_server_on_another_host_is_live_while_it_refreshes(tmp_path: Path) -> None:
    me = Ownership(tmp_path)
    remote = Ownership(tmp_path, ServerIdentity("far", 1, "1", "another-host"))
    remote.register()
    assert me.owned_elsewhere("far")
    old = time.time() - STALE_SECONDS - 5
    os.utime(tmp_path / "servers" / "far.json", (old, old))
    assert not me.owned_elsewhere("far")
    remote.refresh()
    assert me.owned_elsewhere("far")
    assert json.loads((tmp_path / "servers" / "far.json").read_text())["host"] == "another-host"


async def test_recoveries_take_turns(tmp_path: Path) -> None:
    first, second = Ownership(tmp_path), Ownership(tmp_path)
    order: list[str] = []

    async def recover(who: Ownership, name: str) -> None:
        async with who.recovery_lock():
            order.append(f"{name} in")
            await asyncio.sleep(0.2)
            order.append(f"{name} out")

    await asyncio.gather(recover(first, "a"), recover(second, "b"))
    assert order in (["a in", "a out", "b in", "b out"], ["b in", "b out", "a in", "a out"])
