"""``AgentWidget`` against a real Jupyter server and the real claude CLI: its buttons
(Approve, Deny, Interrupt, Send, the files tab) and re-attaching to a session's log.

The server runs on the test's event loop, so whatever makes the widget call the server
(a click, opening a tab) runs in a thread here, as it would run in the kernel, a process
apart from the server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agcluster_jupyter.kernel.client import AgClusterClient
from agcluster_jupyter.kernel.widgets import AgentWidget
from agcluster_jupyter.testing import ScriptedModelServer

from ..support import bash_scenario, wait_until

pytestmark = pytest.mark.cli


@pytest.fixture
async def client(
    jp_serverapp: Any,
    agcluster_app: Any,
    http_server_client: Any,  # the server listens only once this is set up
    jp_http_port: int,
    jp_base_url: str,
) -> AsyncIterator[AgClusterClient]:
    url = f"http://127.0.0.1:{jp_http_port}{jp_base_url}"
    client = AgClusterClient(url, jp_serverapp.identity_provider.token)
    yield client

    def purge() -> None:
        for session in client.sessions():
            client.stop(session["session_id"], purge=True)
        client.close()

    await asyncio.to_thread(purge)


async def _launch(client: AgClusterClient, mode: str = "acceptEdits") -> str:
    config = await asyncio.to_thread(client.config, "code-assistant")
    config["permission_mode"] = mode
    reply = await asyncio.to_thread(client.launch, config=config, name="widget test")
    return str(reply["session_id"])


async def _turn(widget: AgentWidget, message: str) -> None:
    thread = widget.send(message)
    assert thread is not None
    await asyncio.to_thread(thread.join, 120)
    assert not thread.is_alive()


async def test_approve_and_deny_buttons_answer_the_agent(
    client: AgClusterClient, scripted_model: ScriptedModelServer
) -> None:
    scripted_model.add_scenarios(
        [
            bash_scenario("make marker", "echo approved > marker.txt"),
            bash_scenario("make other", "echo denied > other.txt"),
        ]
    )
    session_id = await _launch(client, mode="default")
    widget = AgentWidget(client, session_id, chat_input=True)

    thread = widget.send("make marker")
    assert thread is not None
    [row] = await wait_until(
        lambda: widget.permission_box.children, timeout=60.0, what="the Approve/Deny row"
    )
    assert "echo approved &gt; marker.txt" in row.children[0].value
    assert widget.view.calls[row.request_id].status == "waiting"
    await asyncio.to_thread(row.approve.click)
    assert widget.permission_box.children == ()
    await asyncio.to_thread(thread.join, 120)
    bash = widget.view.calls[row.request_id]
    assert bash.status == "ok" and widget.notice.value.endswith("approved</span>")
    tree = await asyncio.to_thread(client.files, session_id)
    assert "marker.txt" in [n["name"] for n in tree["tree"]]

    thread = widget.send("make other")
    assert thread is not None
    [row] = await wait_until(
        lambda: widget.permission_box.children, timeout=60.0, what="the second request"
    )
    await asyncio.to_thread(row.deny.click)
    await asyncio.to_thread(thread.join, 120)
    assert widget.view.calls[row.request_id].status == "error"
    tree = await asyncio.to_thread(client.files, session_id)
    assert "other.txt" not in [n["name"] for n in tree["tree"]]
    assert widget.view.turns == 2 and not widget.view.busy


async def test_interrupt_button_stops_the_turn(
    client: AgClusterClient, scripted_model: ScriptedModelServer
) -> None:
    scripted_model.add_scenarios(
        [bash_scenario("slow job", "python3 -c 'import time; time.sleep(60)'")]
    )
    widget = AgentWidget(client, await _launch(client))
    thread = widget.send("slow job please")
    assert thread is not None
    await wait_until(
        lambda: widget.view.running_calls(), timeout=60.0, what="the Bash call to start"
    )
    assert not widget.interrupt_button.disabled
    started = time.monotonic()
    await asyncio.to_thread(widget.interrupt_button.click)
    await asyncio.to_thread(thread.join, 60)
    assert time.monotonic() - started < 20
    assert not widget.view.busy and widget.interrupt_button.disabled
    [call] = widget.view.calls.values()
    assert call.status in ("interrupted", "error")


async def test_reattaching_replays_the_log_then_follows_it_live(
    client: AgClusterClient,
) -> None:
    session_id = await _launch(client)
    first = AgentWidget(client, session_id)
    await _turn(first, "please analyse some data")
    assert first.view.turns == 1 and first.view.todos

    # a new kernel: a fresh widget of the same session sees the whole conversation
    again = AgentWidget(client, session_id)
    follower = again.follow()
    try:
        await wait_until(
            lambda: again.view.last_seq >= first.view.last_seq, timeout=60.0, what="the replay"
        )
        assert [(e.role, e.text) for e in again.view.entries] == [
            (e.role, e.text) for e in first.view.entries
        ]
        assert [c.name for c in again.view.timeline] == [c.name for c in first.view.timeline]
        assert again.view.tokens == first.view.tokens > 0
        # ... and then what anyone else sends to the session, live
        await asyncio.to_thread(lambda: list(client.chat(session_id, "hello")))
        await wait_until(lambda: again.view.turns == 2, timeout=60.0, what="the live turn")
        assert again.view.entries[-1].text.startswith("Hello! I'm the scripted demo model")
    finally:
        again.close()
        await asyncio.to_thread(follower.join, 10)
    assert not follower.is_alive()


async def test_files_tab_previews_downloads_and_uploads(
    client: AgClusterClient, tmp_path: Path
) -> None:
    session_id = await _launch(client)
    widget = AgentWidget(client, session_id)
    await _turn(widget, "please analyse some data")
    browser = widget.files
    browser.download_folder = tmp_path
    # opening the tab reads the tree
    await asyncio.to_thread(setattr, widget.tabs, "selected_index", 3)
    assert "analysis.py" in browser.paths

    await asyncio.to_thread(setattr, browser.files, "value", "analysis.py")
    assert "statistics.median" in browser.preview.value and "python" in browser.preview.value
    saved = await asyncio.to_thread(browser.download_selected)
    assert saved == tmp_path / "analysis.py" and "statistics" in saved.read_text()
    again = await asyncio.to_thread(browser.download_selected)
    assert again == tmp_path / "analysis (2).py"  # never overwrites next to the notebook
    archive = await asyncio.to_thread(browser.download_zip)
    assert archive is not None and archive.stat().st_size > 100

    assert await asyncio.to_thread(browser.put, {"data.csv": b"a,b\n1,2\n"})
    assert "data.csv" in browser.paths
    assert not await asyncio.to_thread(browser.put, {"data.csv": b"other"})
    assert "tick Overwrite" in browser.status.value
    browser.overwrite.value = True
    assert await asyncio.to_thread(browser.put, {"data.csv": b"new"})
    assert await asyncio.to_thread(client.read_bytes, session_id, "data.csv") == b"new"
    # hostile names are the server's to refuse, and the message comes through
    assert not await asyncio.to_thread(browser.put, {"../escape.txt": b"x"})
    assert "jp-error-color1" in browser.status.value
    assert "contains a path separator" in browser.status.value


async def test_changes_tab_shows_each_turn_and_restores_rewinds_and_undoes(
    client: AgClusterClient,
) -> None:
    session_id = await _launch(client)
    widget = AgentWidget(client, session_id)
    await _turn(widget, "please analyse some data")
    workspace = Path((await asyncio.to_thread(client.session, session_id))["workspace"])
    assert (workspace / "analysis.py").is_file()
    changes = widget.changes
    await asyncio.to_thread(setattr, widget.tabs, "selected_index", 4)  # opening reads them
    assert widget.tabs.titles[4] == "Changes"
    (row,) = changes.turns.children
    assert "turn 1" in row.children[0].value and "analysis.py" not in row.children[0].value
    diff, restore, rewind = row.children[1:]
    await asyncio.to_thread(diff.click)
    assert "added    analysis.py" in changes.diff.value and "<pre" in changes.diff.value
    await asyncio.to_thread(restore.click)
    assert not (workspace / "analysis.py").exists()
    assert "Undo puts them back" in changes.message.value
    await asyncio.to_thread(changes.undo_button.click)
    assert (workspace / "analysis.py").is_file()
    await asyncio.to_thread(rewind.click)
    assert "forgot the later turns" in changes.message.value
    assert not (workspace / "analysis.py").exists()
    await asyncio.to_thread(changes.undo_button.click)
    await asyncio.to_thread(changes.undo_button.click)  # nothing left: the server says so
    assert "no restore or rewind to undo" in changes.message.value
    assert (workspace / "analysis.py").is_file()
