"""Sessions told apart in the Agents panel, and a session in a main-area tab, in a real
JupyterLab against real sessions (local provider, the real claude CLI, the scripted model).

Two sessions of the same preset, named differently and asked different things: their rows
show name, first prompt, age and the start of their id.  One opens in a main-area tab (the
row's "Open in a tab"), the other from the open session's header; the tab chats with its
session while the side panel stays next to it with the list; opening it again focuses the
same tab; it comes back after a reload, and closes when its session is purged.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from agcluster_jupyter.testing.server import ScriptedModelServer

from .agents_panel import AgentsPanel, expect
from .conftest import ARTIFACTS, Lab

pytestmark = pytest.mark.browser

OPEN_TAB = "agcluster:open-session-tab"
ALPHA_PROMPT = "tabs: what do the alpha logs say?"
BETA_PROMPT = "tabs: fix the beta build"
IN_TAB_PROMPT = "tabs: a question asked in the tab"


@pytest.fixture(scope="module", autouse=True)
def scenarios(lab_model: ScriptedModelServer) -> None:
    lab_model.add_scenarios(
        [
            {"match": "alpha logs", "final": "The alpha logs are quiet."},
            {"match": "beta build", "final": "The beta build is fixed."},
            {"match": "asked in the tab", "final": "Answered in the tab."},
        ]
    )


@pytest.fixture
def panel(lab: Lab) -> Iterator[AgentsPanel]:
    panel = AgentsPanel(lab)
    panel.open()
    yield panel


def launch_named(panel: AgentsPanel, name: str, prompt: str, reply: str) -> str:
    """Launch code-assistant named ``name``, ask ``prompt``, wait for ``reply``, go back."""
    panel.tid("launch-name").fill(name)
    session_id = panel.launch("code-assistant")
    panel.send(prompt)
    panel.assistant_says(reply)
    panel.wait_idle()
    panel.tid("session-back").click()
    return session_id


def session_tab(lab: Lab, session_id: str) -> Any:
    """The main-area widget of a session's tab."""
    return lab.page.locator(f"#jp-main-dock-panel #agcluster-session-{session_id}")


def dock_tab(lab: Lab, label: str) -> Any:
    """The dock panel's tab-bar tab titled ``label``."""
    return lab.page.locator(
        "#jp-main-dock-panel .lm-TabBar-tab",
        has=lab.page.locator(".lm-TabBar-tabLabel", has_text=label),
    )


def test_rows_tell_sessions_apart_and_a_session_opens_in_a_tab(
    lab: Lab, panel: AgentsPanel
) -> None:
    alpha = launch_named(panel, "alpha run", ALPHA_PROMPT, "The alpha logs are quiet.")
    beta = launch_named(panel, "beta run", BETA_PROMPT, "The beta build is fixed.")

    # the rows: name, the start of the id, the first prompt, preset and age
    def row(session_id: str) -> Any:
        return panel.root.locator(f"[data-testid=session-row][data-session-id='{session_id}']")

    for session_id, name, prompt in (
        (alpha, "alpha run", ALPHA_PROMPT),
        (beta, "beta run", BETA_PROMPT),
    ):
        expect(row(session_id).get_by_test_id("session-name")).to_have_text(name)
        expect(row(session_id).get_by_test_id("session-short-id")).to_have_text(session_id[:8])
        expect(row(session_id).get_by_test_id("session-first-prompt")).to_have_text(prompt)
        expect(row(session_id).get_by_test_id("session-cost")).to_have_text(
            re.compile(r"^Code Assistant · \d+ (s|min) · .* tokens · \$")
        )
        expect(row(session_id).get_by_test_id("session-notebook")).to_have_count(0)
        info = lab.server.get(f"agents/sessions/{session_id}").json()
        assert (info["name"], info["first_prompt"], info["notebook"]) == (name, prompt, "")
    assert panel.tid("session-row").evaluate_all("rs => rs.map(r => r.dataset.sessionId)")[:2] == [
        beta,
        alpha,
    ]  # newest first

    # alpha opens in a main-area tab from its row; the side panel keeps the list
    row(alpha).hover()
    row(alpha).get_by_test_id("session-open-tab").click()
    tab = session_tab(lab, alpha)
    expect(tab).to_be_visible()
    title = f"alpha run · {alpha[:8]}"
    expect(dock_tab(lab, title)).to_have_class(re.compile(r"\blm-mod-current\b"))
    pane = tab.get_by_test_id("session-pane")
    expect(pane).to_have_attribute("data-placement", "tab")
    expect(pane).to_have_attribute("data-session-id", alpha)
    expect(tab.get_by_test_id("session-title")).to_have_text("alpha run")
    expect(tab.get_by_test_id("session-back")).to_have_count(0)
    expect(panel.tid("sessions-list")).to_be_visible()
    # its history is there (replayed from the event log), then a chat in the tab
    expect(tab.get_by_test_id("message-user").first).to_have_text(ALPHA_PROMPT)
    box = tab.get_by_test_id("chat-input")
    box.fill(IN_TAB_PROMPT)
    box.press("Enter")
    reply = tab.get_by_test_id("message-assistant").filter(has_text="Answered in the tab.")
    expect(reply).to_be_visible(timeout=120_000)
    expect(reply).not_to_have_attribute("data-streaming", "true")
    expect(pane).to_have_attribute("data-busy", "false")
    expect(tab.get_by_test_id("message-user")).to_have_count(2)
    # the tab's session heard it, the other one did not
    exported = {
        s: lab.server.get(f"agents/{s}/export", params={"format": "md"}).text for s in (alpha, beta)
    }
    assert ALPHA_PROMPT in exported[alpha] and IN_TAB_PROMPT in exported[alpha], exported[alpha]
    assert IN_TAB_PROMPT not in exported[beta], exported[beta]

    # the tab sits next to the side panel, both whole on screen
    tab_box, panel_box = tab.bounding_box(), panel.root.bounding_box()
    assert tab_box and panel_box and tab_box["width"] > 400, (tab_box, panel_box)
    assert tab_box["x"] + tab_box["width"] <= panel_box["x"] + 1, (tab_box, panel_box)
    ARTIFACTS.mkdir(exist_ok=True)
    lab.page.screenshot(path=str(ARTIFACTS / "test_session_tabs.side-by-side.png"))

    # beta from the open session's header: the side panel goes back to the list
    row(beta).click()
    expect(panel.pane).to_have_attribute("data-session-id", beta)
    panel.pane.get_by_test_id("session-open-tab").click()
    expect(session_tab(lab, beta)).to_be_visible()
    expect(panel.pane).to_have_count(0)
    expect(panel.tid("sessions-list")).to_be_visible()
    expect(session_tab(lab, beta).get_by_test_id("message-assistant").last).to_contain_text(
        "The beta build is fixed."
    )

    # opening alpha again focuses its tab, no second one
    lab.execute_for_widget(OPEN_TAB, {"sessionId": alpha})
    expect(dock_tab(lab, title)).to_have_class(re.compile(r"\blm-mod-current\b"))
    expect(dock_tab(lab, title)).to_have_count(1)
    expect(lab.page.locator("#jp-main-dock-panel [id^=agcluster-session-]")).to_have_count(2)

    # a reload brings both tabs back (the layout restorer), with their conversations
    lab.wait_until(
        lambda: all(
            f"agcluster-session:{s}"
            in str(lab.fetch(f"lab/api/workspaces/{lab.workspace}")["body"])
            for s in (alpha, beta)
        ),
        "the layout with both tabs saved",
    )
    lab.reload(launcher=False)
    expect(session_tab(lab, alpha).get_by_test_id("message-user")).to_have_count(2)
    expect(dock_tab(lab, title)).to_have_count(1)
    expect(dock_tab(lab, f"beta run · {beta[:8]}")).to_have_count(1)

    # purged from the side panel's list: its tab closes, the other stays
    panel = AgentsPanel(lab)
    panel.open()
    row(alpha).hover()
    row(alpha).get_by_test_id("session-purge").click()
    dialog = lab.page.locator(".jp-Dialog")
    expect(dialog.locator(".jp-Dialog-header")).to_contain_text("Purge the session?")
    dialog.get_by_role("button", name="Purge").click()
    expect(row(alpha)).to_have_count(0)
    expect(session_tab(lab, alpha)).to_have_count(0)
    expect(dock_tab(lab, title)).to_have_count(0)
    expect(session_tab(lab, beta)).to_have_count(1)
    assert lab.server.get(f"agents/sessions/{alpha}").status_code == 404
