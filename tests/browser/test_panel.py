"""The Agents panel in a real JupyterLab, against real sessions (local provider, the real
claude CLI, the scripted model): launch a preset, chat with streamed text, the tool timeline
and the task list, stop; files, upload and opening a workspace file in Lab; a custom config
refused with the server's message, then Approve/Deny of permission requests."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agcluster_jupyter.testing.server import ScriptedModelServer

from ..support import bash_scenario
from .agents_panel import AgentsPanel, expect
from .conftest import Lab

pytestmark = pytest.mark.browser

#: long enough to be seen mid-stream: 3 words a delta, a delta every 50 ms (~1.5 s)
STREAMED = " ".join(f"word{i}" for i in range(90)) + " THE-END"


@pytest.fixture(scope="module", autouse=True)
def scenarios(lab_model: ScriptedModelServer) -> None:
    lab_model.add_scenarios(
        [
            {"match": "stream slowly", "steps": [[{"text": STREAMED}, {"delay": 0.05}]]},
            bash_scenario("make marker", "echo approved > marker.txt"),
            bash_scenario("make other", "echo denied > other.txt"),
        ]
    )


@pytest.fixture
def panel(lab: Lab) -> Iterator[AgentsPanel]:
    panel = AgentsPanel(lab)
    panel.open()
    yield panel


def test_launch_chat_tools_tasks_and_stop(lab: Lab, panel: AgentsPanel) -> None:
    expect(panel.tid("demo-mode")).to_have_count(0)  # the server has a key
    session_id = panel.launch("code-assistant")

    # streamed text: seen part-way, then whole
    panel.send("stream slowly")
    streaming = panel.root.locator("[data-testid=message-assistant][data-streaming=true]")
    expect(streaming).to_contain_text("word1")
    partial = streaming.inner_text()
    final = panel.assistant_says("THE-END")
    assert "THE-END" not in partial and final.inner_text().strip() == STREAMED
    panel.wait_idle()

    # the demo analysis: tasks, Write, Bash, Edit, Bash
    panel.send("analyse some data")
    panel.assistant_says("Done. I wrote")
    panel.wait_idle()
    calls = panel.tool_calls()
    assert [n for n, _ in calls if n in {"Write", "Bash", "Edit"}] == [
        "Write",
        "Bash",
        "Edit",
        "Bash",
    ], calls
    assert {status for _, status in calls} == {"ok"}, calls
    bash = panel.tool_call("Bash").first
    bash.get_by_test_id("tool-call-row").click()
    detail = bash.get_by_test_id("tool-call-detail")
    expect(detail).to_contain_text("python3 analysis.py")
    expect(detail).to_contain_text("mean: 21.5 C")
    tasks = panel.tid("task-item")
    expect(tasks).to_have_count(3)
    expect(tasks.first).to_contain_text("Write the analysis script")
    for task in tasks.all():
        expect(task).to_have_attribute("data-status", "completed")

    panel.tid("session-stop-current").click()
    expect(panel.pane).to_have_attribute("data-state", "stopped")
    assert lab.server.get(f"agents/sessions/{session_id}").json()["state"] == "stopped"
    panel.tid("session-back").click()
    row = panel.root.locator(f"[data-testid=session-row][data-session-id='{session_id}']")
    expect(row).to_have_attribute("data-state", "stopped")


def test_files_upload_and_open_in_lab(lab: Lab, panel: AgentsPanel, tmp_path: Path) -> None:
    session_id = panel.launch("code-assistant")
    panel.send("take a note: water the plants")
    panel.assistant_says("Noted in")

    panel.tid("tab-files").click()
    expect(panel.file_entry("notes.md")).to_be_visible()

    upload = tmp_path / "data.csv"
    upload.write_text("day,temp\nMon,18.5\n")
    panel.tid("upload-input").set_input_files(str(upload))
    expect(panel.tid("upload-progress").last).to_have_attribute("data-state", "done")
    expect(panel.file_entry("data.csv")).to_be_visible()
    raw = lab.server.get(f"files/{session_id}/data.csv", params={"raw": "1"})
    assert raw.status_code == 200 and raw.text == upload.read_text()

    # a file opens in JupyterLab's own editor, from the workspace folder in the Jupyter tree
    contents_path = lab.server.get(f"agents/sessions/{session_id}").json()["contents_path"]
    panel.file_entry("notes.md").click()
    tab = lab.page.locator("#jp-main-dock-panel .lm-TabBar-tab", has_text="notes.md")
    expect(tab).to_be_visible()
    expect(tab).to_have_class(re.compile(r"\blm-mod-current\b"))
    expect(lab.page.locator(".jp-FileEditor .cm-content").last).to_contain_text("water the plants")
    opened = lab.page.evaluate("() => window.jupyterapp.shell.currentWidget.context.path")
    assert opened == f"{contents_path}/notes.md"


def test_custom_config_errors_then_approve_and_deny(lab: Lab, panel: AgentsPanel) -> None:
    def bad_memory(config: dict[str, Any]) -> None:
        config["resource_limits"]["memory"] = "lots"

    panel.launch_custom("code-assistant", bad_memory)
    error = panel.tid("config-error")
    expect(error).to_have_attribute("data-field", "config.resource_limits.memory")
    expect(error).to_contain_text("'lots' is not a size")
    lab.take_errors(matching=r"status of 400")

    def asks_first(config: dict[str, Any]) -> None:
        config.update(id="browser-approvals", permission_mode="default")

    panel.launch_custom("code-assistant", asks_first)
    session_id = panel.wait_for_session()

    panel.send("make marker")
    request = panel.tid("permission-request")
    expect(request).to_have_attribute("data-tool-name", "Bash")
    expect(request).to_contain_text("echo approved > marker.txt")
    expect(panel.tool_call("Bash").last).to_have_attribute("data-status", "waiting")
    request.get_by_test_id("permission-approve").click()
    expect(request).to_have_count(0)
    expect(panel.tool_call("Bash").last).to_have_attribute("data-status", "ok")
    panel.wait_idle()

    panel.send("make other")
    expect(request).to_contain_text("echo denied > other.txt")
    request.get_by_test_id("permission-deny").click()
    expect(request).to_have_count(0)
    expect(panel.tool_call("Bash").last).to_have_attribute("data-status", "error")
    panel.wait_idle()

    names = {n["name"] for n in lab.server.get(f"files/{session_id}").json()["tree"]}
    assert "marker.txt" in names and "other.txt" not in names
