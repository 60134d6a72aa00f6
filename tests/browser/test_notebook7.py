"""Jupyter Notebook 7 (the ``notebook`` package's UI, served by the same server at ``/tree``
and ``/notebooks/<path>``) with the extension, in a real browser against real sessions
(local provider, the real claude CLI, the scripted model).

- The Agents panel sits in Notebook 7's right side area, opened from View ▸ Right Sidebar ▸
  Show Agents (or the command palette): a preset launches there and its reply streams in.
  Notebook 7's main area holds one document, so the panel offers no "Open in a tab" there.
- A notebook with ``%load_ext agcluster_jupyter`` and a ``%%agent code-assistant`` cell,
  run in Notebook 7: the live widget shows the agent's reply, and the panel (on the
  notebook's page) lists that session with the notebook that launched it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nbformat
import pytest

from agcluster_jupyter.testing.jupyter import JupyterServerProcess
from agcluster_jupyter.testing.server import ScriptedModelServer

from .agents_panel import PANEL_ID, READY, expect
from .conftest import ARTIFACTS, Lab, lab_server_process

if TYPE_CHECKING:
    from playwright.sync_api import ConsoleMessage, Locator, Page

pytestmark = pytest.mark.browser

#: streamed slowly enough to be seen part-way: 3 words a delta, a delta every 50 ms
STREAMED = " ".join(f"nb7word{i}" for i in range(60)) + " NB7-END"
PANEL_PROMPT = "notebook seven: stream to me"
CELL_PROMPT = "notebook seven: a question from a cell"
CELL_REPLY = "Answered in a Notebook 7 cell."


@pytest.fixture(scope="module", autouse=True)
def scenarios(lab_model: ScriptedModelServer) -> None:
    lab_model.add_scenarios(
        [
            {"match": "stream to me", "steps": [[{"text": STREAMED}, {"delay": 0.05}]]},
            {"match": "a question from a cell", "final": CELL_REPLY},
        ]
    )


@pytest.fixture(scope="module")
def lab_server(lab_model: ScriptedModelServer) -> Iterator[JupyterServerProcess]:
    """A server of this module's own.  jupyter_server's static file handler caches where it
    found a file by its name alone, across handlers (``FileFindHandler._static_paths``):
    once Notebook 7 has served its fonts from /static/notebook/, the same hashed names under
    /static/lab/ resolve to Notebook 7's folder and get a 403 from JupyterLab's handler.
    So Notebook 7 must not share a server with the Lab page tests."""
    with lab_server_process(lab_model) as started:
        yield started


@pytest.fixture
def notebook7(lab: Lab) -> Iterator[Any]:
    """A second page of the test's browser context (logged in by the Lab page's cookie),
    for Notebook 7; its console errors fail the test as the Lab page's do."""
    page = lab.page.context.new_page()

    def on_console(msg: ConsoleMessage) -> None:
        if msg.type == "error":
            lab.errors.append(f"notebook 7 console: {msg.text} ({msg.location})")

    page.on("pageerror", lambda exc: lab.errors.append(f"notebook 7 pageerror: {exc}"))
    page.on("console", on_console)
    yield page
    page.close()
    # Notebook 7's own keyboard-shortcuts plugin (JupyterLab's, in notebook_core), at
    # start-up: the same with this extension's remoteEntry blocked, so not ours
    lab.take_errors(
        r"^notebook 7 pageerror: Cannot read properties of undefined \(reading 'schema'\)$"
    )
    # and its own console error at start-up, the same with this extension blocked
    # (checked with a route that aborts labextensions/agcluster-jupyter/)
    lab.take_errors(r"^notebook 7 console: Cannot convert undefined or null to object \(")
    # jupyter-collaboration (installed for the tests, the [collaboration] extra): its
    # timeline plugin needs JupyterLab's status bar, which Notebook 7 does not have
    lab.take_errors(
        r"^notebook 7 console: Plugin '@jupyter/docprovider-extension:statusBarTimeline' "
        r"failed to activate\. TypeError: No provider for: @jupyterlab/statusbar:IStatusBar"
    )


def menu(page: Page, *path: str) -> None:
    """Click through Notebook 7's menu bar: ``menu(page, "View", "Right Sidebar", ...)``."""
    page.locator("#menu-panel").get_by_role("menuitem", name=path[0], exact=True).click()
    for label in path[1:]:
        # a submenu's own item has no menuitem role: find items by their label
        item = page.locator(".lm-Menu:visible .lm-Menu-item").filter(
            has=page.locator(".lm-Menu-itemLabel").get_by_text(label, exact=True)
        )
        item.last.click()


class Notebook7Panel:
    """The Agents panel in a Notebook 7 page, through its ``data-testid`` contract."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.root = page.locator(f"#{PANEL_ID}")

    def tid(self, test_id: str) -> Locator:
        return self.root.get_by_test_id(test_id)

    def open(self, palette: bool = False) -> None:
        """View ▸ Right Sidebar ▸ Show Agents (or, with ``palette``, *Open the Agents Panel*
        from the command palette): the right side area shows the panel."""
        if palette:
            menu(self.page, "View", "Activate Command Palette")
            search = self.page.locator(".lm-CommandPalette-input")
            search.fill("Open the Agents Panel")
            self.page.locator(
                ".lm-CommandPalette-item", has_text="Open the Agents Panel"
            ).first.click()
        else:
            menu(self.page, "View", "Right Sidebar", "Show Agents")
        expect(self.page.locator("#jp-right-stack")).to_be_visible()
        expect(self.root).to_be_visible()
        expect(self.tid("preset-card").first).to_be_visible()


def test_the_agents_panel_in_notebook7(lab: Lab, notebook7: Page) -> None:
    page = notebook7
    page.goto(f"{lab.root}tree")
    expect(page.locator(".jp-DirListing").first).to_be_visible()
    panel = Notebook7Panel(page)
    expect(panel.root).to_be_hidden()  # the right side area is closed at first
    panel.open()
    # the panel sits in the right side area, to the right of the file browser
    panel_box = panel.root.bounding_box()
    listing_box = page.locator(".jp-DirListing").first.bounding_box()
    assert (
        panel_box and listing_box and panel_box["x"] >= listing_box["x"] + listing_box["width"] - 1
    )

    card = panel.root.locator("[data-testid=preset-card][data-config-id='code-assistant']")
    panel.tid("launch-name").fill("from notebook 7")
    card.get_by_test_id("preset-launch").click()
    pane = panel.tid("session-pane")
    expect(pane).to_have_attribute("data-state", READY)
    session_id = pane.get_attribute("data-session-id")
    assert session_id
    expect(panel.tid("session-title")).to_have_text("from notebook 7")
    # Notebook 7's main area holds one document: no session tabs there
    expect(panel.tid("session-open-tab")).to_have_count(0)

    box = panel.tid("chat-input")
    box.fill(PANEL_PROMPT)
    box.press("Enter")
    streaming = panel.root.locator("[data-testid=message-assistant][data-streaming=true]")
    expect(streaming).to_contain_text("nb7word1")
    partial = streaming.inner_text()
    reply = panel.tid("message-assistant").filter(has_text="NB7-END")
    expect(reply).to_be_visible(timeout=120_000)
    expect(reply).not_to_have_attribute("data-streaming", "true")
    assert "NB7-END" not in partial and reply.inner_text().strip() == STREAMED
    expect(pane).to_have_attribute("data-busy", "false")

    # back to the list: the session's row, with its name and first prompt
    panel.tid("session-back").click()
    row = panel.root.locator(f"[data-testid=session-row][data-session-id='{session_id}']")
    expect(row.get_by_test_id("session-name")).to_have_text("from notebook 7")
    expect(row.get_by_test_id("session-first-prompt")).to_have_text(PANEL_PROMPT)
    expect(row.get_by_test_id("session-open-tab")).to_have_count(0)
    row.scroll_into_view_if_needed()
    page.screenshot(path=str(_artifact("test_notebook7.panel.png")))


def _notebook(lab: Lab, name: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [
        nbformat.v4.new_code_cell("%load_ext agcluster_jupyter"),
        nbformat.v4.new_code_cell(f"%%agent code-assistant\n{CELL_PROMPT}"),
    ]
    nbformat.write(nb, lab.server.base / "root" / name)


def _run_all_cells(page: Page, notebook: Locator) -> None:
    """Run ▸ Run All Cells, until the first cell has run.  Notebook 7 can ignore the menu
    command in the moment after its kernel turned idle (seen once in CI: no cell ran, no
    error); the first cell's prompt then stays ``[ ]:``, so the click is repeated."""
    first_prompt = notebook.locator(".jp-CodeCell").first.locator(".jp-InputPrompt")
    for attempt in range(3):
        menu(page, "Run", "Run All Cells")
        try:
            expect(first_prompt).to_have_text(re.compile(r"\[(\d+|\*)\]"), timeout=15_000)
            return
        except AssertionError:
            if attempt == 2:
                raise


def _artifact(name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / name


def test_an_agent_cell_in_notebook7(lab: Lab, notebook7: Page) -> None:
    page = notebook7
    _notebook(lab, "nb7.ipynb")
    page.goto(f"{lab.root}notebooks/nb7.ipynb")
    notebook = page.locator(".jp-NotebookPanel")
    expect(notebook.locator(".jp-CodeCell")).to_have_count(2)
    # the kernel is up (Notebook 7's toolbar shows its state)
    expect(page.locator(".jp-Notebook-ExecutionIndicator[data-status=idle]")).to_have_count(
        1, timeout=60_000
    )
    _run_all_cells(page, notebook)
    cell = notebook.locator(".jp-CodeCell").nth(1)
    chat = cell.locator(".jp-Cell-outputArea .widget-output").first
    expect(chat).to_contain_text(CELL_REPLY, timeout=120_000)
    expect(chat).to_contain_text(CELL_PROMPT)

    # the session, as the server has it: launched from this notebook
    sessions = [
        s
        for s in lab.server.get("agents/sessions").json()["sessions"]
        if s.get("first_prompt") == CELL_PROMPT
    ]
    assert len(sessions) == 1, sessions
    session = sessions[0]
    assert session["notebook"] == "nb7.ipynb", session

    # the panel on the notebook's page (from the command palette this time) lists it, with
    # the notebook that launched it
    panel = Notebook7Panel(page)
    panel.open(palette=True)
    row = panel.root.locator(
        f"[data-testid=session-row][data-session-id='{session['session_id']}']"
    )
    expect(row.get_by_test_id("session-first-prompt")).to_have_text(CELL_PROMPT)
    expect(row.get_by_test_id("session-notebook")).to_have_text("nb7.ipynb")
    row.scroll_into_view_if_needed()
    # both side by side: the notebook, the panel to its right
    nb_box, panel_box = notebook.bounding_box(), panel.root.bounding_box()
    assert nb_box and panel_box and panel_box["x"] >= nb_box["x"] + nb_box["width"] - 1
    page.screenshot(path=str(_artifact("test_notebook7.agent-cell.png")))

    # the kernel and its widgets' comms go with the page
    for kernel_session in lab.fetch("api/sessions")["body"]:
        lab.fetch(f"api/sessions/{kernel_session['id']}", method="DELETE")
    lab.take_errors("Comm not found")
