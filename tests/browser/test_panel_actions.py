"""The Agents panel's less travelled paths in a real JupyterLab: an upload over an existing
file (the overwrite prompt) and a purge from the sessions list (its confirmation);
interrupting a long tool call; sub-agent calls nested under their Agent call; the dark
theme."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agcluster_jupyter.testing.server import ScriptedModelServer

from ..support import bash_scenario
from .agents_panel import AgentsPanel, expect
from .conftest import ARTIFACTS, Lab

pytestmark = pytest.mark.browser

SUB_PROMPT = "frontend subtask: write the page"


@pytest.fixture(scope="module", autouse=True)
def scenarios(lab_model: ScriptedModelServer) -> None:
    lab_model.add_scenarios(
        [
            bash_scenario("sleep a long time", "sleep 60"),
            {
                "match": "delegate the page",
                "steps": [
                    [
                        {
                            "tool_use": {
                                "name": "Agent",
                                "input": {
                                    "description": "Write the page",
                                    "prompt": SUB_PROMPT,
                                    "subagent_type": "frontend",
                                },
                            }
                        }
                    ]
                ],
                "final": "The team is done.",
            },
            # the sub-agent's own conversation starts with the lead's brief
            {
                "match": SUB_PROMPT,
                "steps": [
                    [
                        {
                            "tool_use": {
                                "name": "Write",
                                "input": {
                                    "file_path": "{cwd}/page.html",
                                    "content": "<h1>made by the sub-agent</h1>\n",
                                },
                            }
                        }
                    ]
                ],
                "final": "Page written.",
            },
        ]
    )


@pytest.fixture
def panel(lab: Lab) -> Iterator[AgentsPanel]:
    panel = AgentsPanel(lab)
    panel.open()
    yield panel


def accept_dialog(lab: Lab, title: str, button: str) -> None:
    """JupyterLab's dialog ``title`` is up: press ``button``, see it go."""
    dialog = lab.page.locator(".jp-Dialog")
    expect(dialog.locator(".jp-Dialog-header")).to_contain_text(title)
    dialog.get_by_role("button", name=button).click()
    expect(dialog).to_have_count(0)


def test_upload_overwrite_prompt_then_purge_from_the_list(
    lab: Lab, panel: AgentsPanel, tmp_path: Path
) -> None:
    session_id = panel.launch("code-assistant")
    info = lab.server.get(f"agents/sessions/{session_id}").json()
    workspace = lab.server.base / "root" / info["contents_path"]
    assert workspace.is_dir()

    # the same name twice: the server refuses (409), the panel asks, Overwrite sends again
    panel.tid("tab-files").click()
    upload = tmp_path / "data.csv"
    upload.write_text("v1\n")
    panel.tid("upload-input").set_input_files(str(upload))
    expect(panel.tid("upload-progress").last).to_have_attribute("data-state", "done")
    upload.write_text("v2: the new bytes\n")
    panel.tid("upload-input").set_input_files(str(upload))
    accept_dialog(lab, "Overwrite?", "Overwrite")
    expect(panel.tid("upload-progress").last).to_have_attribute("data-state", "done")
    raw = lab.server.get(f"files/{session_id}/data.csv", params={"raw": "1"})
    assert raw.status_code == 200 and raw.text == "v2: the new bytes\n"
    lab.take_errors(matching=r"status of 409")

    # Purge from the sessions list: asked first, then gone over REST and on disk
    panel.tid("session-back").click()
    row = panel.root.locator(f"[data-testid=session-row][data-session-id='{session_id}']")
    row.hover()
    row.get_by_test_id("session-purge").click()
    accept_dialog(lab, "Purge the session?", "Purge")
    expect(row).to_have_count(0)
    assert lab.server.get(f"agents/sessions/{session_id}").status_code == 404
    assert not workspace.exists()


def test_interrupt_a_long_tool_call(lab: Lab, panel: AgentsPanel) -> None:
    panel.launch("code-assistant")
    pane = panel.pane
    expect(pane).to_have_attribute("data-busy", "false")
    panel.send("sleep a long time")
    expect(pane).to_have_attribute("data-busy", "true")
    bash = panel.tool_call("Bash").last
    expect(bash).to_have_attribute("data-status", "running")

    # the header: the title on a line of its own, whole; tokens and cost under it
    title, usage = panel.tid("session-title"), panel.tid("session-usage")
    assert title.evaluate("e => e.scrollWidth <= e.clientWidth"), title.inner_text()
    assert usage.bounding_box()["y"] > title.bounding_box()["y"]  # type: ignore[index]
    # the side tab names the panel (its title.label)
    tab = lab.page.locator(".lm-TabBar-tab[data-id='agcluster-agents-panel']")
    expect(tab).to_contain_text("Agents")

    started = time.monotonic()
    panel.tid("chat-interrupt").click()
    expect(pane).to_have_attribute("data-busy", "false", timeout=15_000)
    expect(bash).to_have_attribute("data-status", re.compile(r"^(interrupted|error)$"))
    expect(panel.tid("chat-interrupt")).to_have_count(0)
    assert time.monotonic() - started < 15  # not the 60 s of the sleep
    # the session takes the next message
    expect(pane).to_have_attribute("data-state", re.compile(r"^(ready|idle)$"))


def test_sub_agent_calls_nest_under_their_agent_call(lab: Lab, panel: AgentsPanel) -> None:
    session_id = panel.launch("fullstack-team")
    panel.send("delegate the page")
    panel.assistant_says("The team is done.")
    panel.wait_idle()

    lead = panel.root.locator(
        "[data-testid=tool-call]:is([data-tool-name=Agent], [data-tool-name=Task])"
    ).first
    expect(lead).to_have_attribute("data-status", "ok")
    nested = lead.locator("[data-testid=tool-call][data-tool-name=Write]")
    expect(nested).to_have_count(1)
    expect(nested).to_have_attribute("data-status", "ok")
    # top level: only the lead's own calls (the Write is not repeated there)
    top = panel.tid("tool-timeline").locator(":scope > [data-testid=tool-call]")
    assert "Write" not in top.evaluate_all("els => els.map(e => e.dataset.toolName)")
    # a duration stays on one line ("0.7 s", not "0.7" over "s")
    one_line = "e => e.getClientRects().length === 1 && e.scrollWidth <= e.clientWidth + 1"
    for time_span in panel.root.locator(".jp-AgentsPanel-callTime").all():
        assert time_span.evaluate(one_line), time_span.inner_text()
        box = time_span.bounding_box()
        assert box is not None and box["height"] < 24, (time_span.inner_text(), box)
    nested.get_by_test_id("tool-call-row").click()
    expect(nested.get_by_test_id("tool-call-detail")).to_contain_text("page.html")

    names = {n["name"] for n in lab.server.get(f"files/{session_id}").json()["tree"]}
    assert "page.html" in names


def luminance(css: str) -> float:
    """``rgb(r, g, b)``, ``rgba(...)`` or ``color(srgb r g b)`` (a ``color-mix``) →
    relative luminance (WCAG)."""
    values = [float(v) for v in re.findall(r"[\d.]+", css.removeprefix("color(srgb"))[:3]]
    scale = 1.0 if css.startswith("color(") else 255.0
    r, g, b = (v / scale for v in values)

    def channel(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: str, b: str) -> float:
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


COLOURS = """root => {
    const style = e => getComputedStyle(e);
    const card = root.querySelector('[data-testid=preset-card]');
    return {
        background: style(root).backgroundColor,
        text: style(root).color,
        card: style(card).backgroundColor,
        cardText: style(card.querySelector('*')).color,
        // the local provider's "No isolation" warning
        warning: style(root.querySelector('.jp-AgentsPanel-warning')).backgroundColor,
        warningText: style(root.querySelector('.jp-AgentsPanel-warning')).color,
    };
}"""


def theme_via_menu(lab: Lab, theme: str) -> None:
    page = lab.page
    page.locator("#jp-MainMenu .lm-MenuBar-itemLabel", has_text="Settings").click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Theme$")).hover()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{re.escape(theme)}$")).click()
    expect(page.locator("body")).to_have_attribute("data-jp-theme-name", theme, timeout=15_000)


def test_dark_theme(lab: Lab, panel: AgentsPanel) -> None:
    light = panel.root.evaluate(COLOURS)
    assert light["background"] not in ("", "rgba(0, 0, 0, 0)")
    theme_via_menu(lab, "JupyterLab Dark")
    try:
        expect(lab.page.locator("body")).to_have_attribute("data-jp-theme-light", "false")
        dark = panel.root.evaluate(COLOURS)
        ARTIFACTS.mkdir(exist_ok=True)
        panel.root.screenshot(path=str(ARTIFACTS / "test_panel_actions.test_dark_theme-panel.png"))
        assert dark["background"] != light["background"], (light, dark)
        assert dark["text"] != light["text"], (light, dark)
        assert luminance(dark["background"]) < luminance(light["background"])
        assert contrast(dark["background"], dark["text"]) >= 4.5, dark
        assert contrast(dark["card"], dark["cardText"]) >= 4.5, dark
        assert contrast(dark["warning"], dark["warningText"]) >= 4.5, dark
        assert contrast(light["warning"], light["warningText"]) >= 4.5, light
    finally:
        # the theme is a user setting, shared by every test's page: back to light
        theme_via_menu(lab, "JupyterLab Light")
