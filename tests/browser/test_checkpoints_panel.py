"""Per-turn checkpoints in the Agents panel, in a real JupyterLab against a real session
(local provider, the real claude CLI, the scripted model).

A turn writes a file: the chat shows "1 file changed" under it; that opens the turn's diff
in a main-area tab (the file, its lines as text).  "Restore these files" removes the file
from the session's workspace (on disk), Undo brings it back; "Rewind to before this turn"
asks first (the dialog names the file and the turns the agent forgets), then the file is
gone again and the chat notes the rewind.  "Fork from here" starts a new session that the
list shows under its parent.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agcluster_jupyter.testing.server import ScriptedModelServer

from .agents_panel import AgentsPanel, expect
from .conftest import Lab

pytestmark = pytest.mark.browser

WRITE_PROMPT = "checkpoints: write the report"
FORK_PROMPT = "checkpoints: write the summary"


@pytest.fixture(scope="module", autouse=True)
def scenarios(lab_model: ScriptedModelServer) -> None:
    lab_model.add_scenarios(
        [
            {
                "match": "write the report",
                "steps": [
                    [
                        {
                            "tool_use": {
                                "name": "Write",
                                "input": {
                                    "file_path": "{cwd}/report.md",
                                    "content": "# Report\nall good\n",
                                },
                            }
                        }
                    ]
                ],
                "final": "The report is written.",
            },
            {
                "match": "write the summary",
                "steps": [
                    [
                        {
                            "tool_use": {
                                "name": "Write",
                                "input": {
                                    "file_path": "{cwd}/summary.md",
                                    "content": "summary\n",
                                },
                            }
                        }
                    ]
                ],
                "final": "The summary is written.",
            },
        ]
    )


@pytest.fixture
def panel(lab: Lab) -> Iterator[AgentsPanel]:
    panel = AgentsPanel(lab)
    panel.open()
    yield panel


def diff_view(lab: Lab) -> Any:
    return lab.page.locator("#jp-main-dock-panel [data-testid=diff-view]")


def write_turn(lab: Lab, panel: AgentsPanel, prompt: str, reply: str) -> tuple[str, Path]:
    session_id = panel.launch("code-assistant")
    workspace = Path(lab.server.get(f"agents/sessions/{session_id}").json()["workspace"])
    panel.send(prompt)
    panel.assistant_says(reply)
    panel.wait_idle()
    return session_id, workspace


def open_diff(lab: Lab, panel: AgentsPanel, lines: int) -> Any:
    """Click the turn's "1 file changed (+lines −0 lines)"; its diff view."""
    button = panel.tid("checkpoint-button")
    expect(button).to_have_count(1)
    expect(button).to_have_text(re.compile(rf"^1 file changed \(\+{lines} \u22120 lines\)$"))
    expect(button).to_have_attribute("data-turn", "1")
    button.click()
    view = diff_view(lab)
    expect(view).to_be_visible()
    expect(view).to_have_attribute("data-turn", "1")
    return view


def test_restore_undo_and_rewind_a_turn(lab: Lab, panel: AgentsPanel) -> None:
    session_id, workspace = write_turn(lab, panel, WRITE_PROMPT, "The report is written.")
    report = workspace / "report.md"
    assert report.read_text() == "# Report\nall good\n"

    view = open_diff(lab, panel, lines=2)
    expect(view).to_have_attribute("data-session-id", session_id)
    file = view.get_by_test_id("diff-file")
    expect(file).to_have_count(1)
    expect(file).to_have_attribute("data-path", "report.md")
    expect(file).to_have_attribute("data-status", "added")
    expect(file.get_by_test_id("diff-file-path")).to_have_text("report.md")
    text = file.get_by_test_id("diff-text")
    expect(text).to_contain_text("+# Report")
    expect(text.locator("[data-kind=add]")).to_have_count(2)

    # the side panel's Files tab stays open next to the view, and follows what it does
    panel.tid("tab-files").click()
    expect(panel.file_entry("report.md")).to_have_count(1)

    # Restore these files: the file the turn added is gone from the workspace
    view.get_by_test_id("diff-restore").click()
    expect(view.get_by_test_id("diff-message")).to_contain_text("Restored 1 file")
    lab.wait_until(lambda: not report.exists(), "report.md removed by the restore")
    expect(panel.file_entry("report.md")).to_have_count(0)

    # Undo brings it back
    view.get_by_test_id("diff-undo").click()
    expect(view.get_by_test_id("diff-message")).to_contain_text("Undid the restore")
    lab.wait_until(report.exists, "report.md back after the undo")
    assert report.read_text() == "# Report\nall good\n"
    expect(panel.file_entry("report.md")).to_have_count(1)
    panel.tid("tab-chat").click()
    expect(view.get_by_test_id("diff-undo")).to_have_count(0)

    # Rewind: asked first, the dialog says what is undone; Cancel changes nothing
    view.get_by_test_id("diff-rewind").click()
    dialog = lab.page.locator(".jp-Dialog")
    expect(dialog.locator(".jp-Dialog-header")).to_contain_text("Rewind to before turn 1?")
    expect(dialog).to_contain_text("report.md")
    expect(dialog).to_contain_text("The agent forgets turn 1")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_have_count(0)
    assert report.exists()

    view.get_by_test_id("diff-rewind").click()
    expect(dialog.locator(".jp-Dialog-header")).to_contain_text("Rewind to before turn 1?")
    dialog.get_by_role("button", name="Rewind").click()
    expect(dialog).to_have_count(0)
    expect(view.get_by_test_id("diff-message")).to_contain_text("Rewound to before turn 1")
    lab.wait_until(lambda: not report.exists(), "report.md removed by the rewind")
    expect(panel.tid("message-note")).to_contain_text("Rewound to before turn 1")
    expect(view.get_by_test_id("diff-error")).to_have_count(0)


def test_fork_from_a_turn_shows_under_its_parent(lab: Lab, panel: AgentsPanel) -> None:
    session_id, _ = write_turn(lab, panel, FORK_PROMPT, "The summary is written.")
    view = open_diff(lab, panel, lines=1)
    expect(view.get_by_test_id("diff-file")).to_have_attribute("data-path", "summary.md")

    view.get_by_test_id("diff-fork").click()
    message = view.get_by_test_id("diff-message")
    expect(message).to_contain_text("Forked from turn 1: new session ")
    fork_id = (message.text_content() or "").rsplit(" ", 1)[-1].rstrip(".")
    info = lab.server.get(f"agents/sessions/{fork_id}").json()
    assert info["forked_from"]["session_id"] == session_id

    panel.tid("session-back").click()
    row = panel.root.locator(f"[data-testid=session-row][data-session-id='{fork_id}']")
    expect(row).to_have_attribute("data-depth", "1")
    expect(row.get_by_test_id("session-fork-of")).to_have_attribute("data-parent-id", session_id)
    expect(row.get_by_test_id("session-fork-of")).to_contain_text("fork of ")
    ids = panel.tid("session-row").evaluate_all("rs => rs.map(r => r.dataset.sessionId)")
    assert ids.index(fork_id) == ids.index(session_id) + 1  # right under its parent
