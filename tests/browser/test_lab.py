"""JupyterLab in a real browser: the extension loads, the Agents side panel is there and
opens from its side-bar tab and from the command palette, and the REST API answers the
page through JupyterLab's own login (cookie + XSRF), and nobody without it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from agcluster_jupyter.testing.jupyter import JupyterServerProcess

from ..support import TEST_KEY
from .agents_panel import OPEN_PANEL, PANEL_ID, expect
from .conftest import Lab, lab_root

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = pytest.mark.browser

PLUGIN_ID = "agcluster-jupyter:plugin"
OPEN_PANEL_LABEL = "Open the Agents Panel"


def test_labextension_list_reports_agcluster_ok() -> None:
    """What a user checks after ``pip install``: the prebuilt extension, enabled and OK."""
    jupyter = Path(sys.executable).with_name("jupyter")
    done = subprocess.run(
        [str(jupyter), "labextension", "list"], capture_output=True, text=True, timeout=60
    )
    out = re.sub(r"\x1b\[[0-9;]*m", "", done.stdout + done.stderr)
    assert done.returncode == 0, out
    assert re.search(r"^\s*agcluster-jupyter v\S+ enabled OK\b", out, re.M), out


def test_lab_loads_with_the_extension_and_no_console_errors(lab: Lab) -> None:
    page = lab.page
    expect(page.locator(".jp-Launcher")).to_be_visible()
    federated = page.evaluate(
        """() => JSON.parse(document.getElementById('jupyter-config-data').textContent)
                 .federated_extensions.map(e => e.name)"""
    )
    assert "agcluster-jupyter" in federated
    assert page.evaluate("id => window.jupyterapp.isPluginActivated(id)", PLUGIN_ID)
    assert lab.has_command(OPEN_PANEL)
    # the model's key lives in the server's environment only
    assert TEST_KEY not in page.content()
    assert lab.take_errors() == []


def test_agents_panel_opens_from_its_side_bar_tab_and_is_restored(lab: Lab) -> None:
    page = lab.page
    tab = lab.side_tab(PANEL_ID)
    # the right side bar by default (setting panelSide), titled "Agents", with its icon
    expect(
        page.locator(f".jp-SideBar.jp-mod-right .lm-TabBar-tab[data-id='{PANEL_ID}']")
    ).to_be_visible()
    expect(tab).to_have_attribute("title", "Agents")
    expect(tab.locator("svg[data-icon^='agcluster']")).to_be_visible()
    panel = page.locator(f"#{PANEL_ID}")
    expect(panel).to_be_hidden()

    tab.click()
    expect(panel).to_be_visible()
    expect(panel).to_contain_text("Agents")
    expect(tab).to_have_attribute("aria-selected", "true")

    # the open panel is saved in the workspace and comes back after a reload.  (A fresh
    # workspace is first saved with no main dock area; restored from that, JupyterLab
    # resets the whole layout: wait for the save that has both.)
    def saved() -> bool:
        body = lab.fetch(f"lab/api/workspaces/{lab.workspace}")["body"]
        layout = body["data"].get("layout-restorer:data", {})
        right = layout.get("right", {})
        return bool(layout.get("main", {}).get("dock")) and right.get("current") == PANEL_ID

    lab.wait_until(saved, "the open Agents panel saved in the workspace")
    lab.reload()
    expect(panel).to_be_visible()
    expect(tab).to_have_attribute("aria-selected", "true")

    tab.click()
    expect(panel).to_be_hidden()


def test_agents_panel_opens_from_the_command_palette(lab: Lab) -> None:
    panel = lab.page.locator(f"#{PANEL_ID}")
    expect(panel).to_be_hidden()
    lab.run_from_palette(OPEN_PANEL_LABEL)
    expect(panel).to_be_visible()
    expect(lab.side_tab(PANEL_ID)).to_have_attribute("aria-selected", "true")


def test_rest_api_answers_the_page_through_its_own_login(lab: Lab) -> None:
    health = lab.fetch("api/agcluster/health")
    assert health["status"] == 200, health
    assert health["body"]["provider"] == "local"
    assert health["body"]["server_key"] is True
    assert TEST_KEY not in str(health["body"])
    # a write needs the XSRF token besides the cookie
    stop = "api/agcluster/agents/sessions/no-such-session"
    assert lab.fetch(stop, method="DELETE")["status"] == 404
    refused = lab.fetch(stop, method="DELETE", xsrf=False)
    assert refused["status"] == 403, refused
    lab.take_errors()  # the browser logs the 403 and 404 it was asked to provoke


def test_rest_api_refuses_a_browser_that_has_not_logged_in(
    browser: Browser, lab_server: JupyterServerProcess
) -> None:
    context = browser.new_context(base_url=lab_root(lab_server))
    try:
        page = context.new_page()
        page.goto("login")
        expect(page.locator("input[type='password']").first).to_be_visible()
        status = page.evaluate(
            "async () => (await fetch('api/agcluster/health', {credentials: 'same-origin'})).status"
        )
        assert status == 403
        assert context.request.get("api/agcluster/health").status == 403
        assert context.request.get("api/agcluster/agents/sessions").status == 403
    finally:
        context.close()
