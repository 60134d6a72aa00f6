"""An agent edits a notebook the user has open in JupyterLab (no real-time collaboration):
the real CLI calls the jupyter tools, the server writes the notebook, and the open page
shows the new cells without a reload and without a "file changed on disk" dialog; while
the user has unsaved typing, the agent's edit is refused and the typing stays.  The file
browser's "Open an Agent Here…" launches a session on a folder."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from agcluster_jupyter.testing.server import ScriptedModelServer

from .agents_panel import AgentsPanel, expect
from .conftest import Lab, session_ids
from .notebook_pages import (
    chat,
    edit_scenario,
    file_version,
    launch_in,
    open_notebook,
    project_folder,
)

pytestmark = pytest.mark.browser


def test_the_agents_cells_appear_in_the_open_notebook_and_unsaved_typing_wins(
    lab: Lab, lab_model: ScriptedModelServer
) -> None:
    folder = project_folder(lab, "live")
    notebook = open_notebook(lab, "live/nb.ipynb")
    version = file_version(lab, "live/nb.ipynb")
    lab_model.add_scenarios(
        [
            edit_scenario(
                "add the next step",
                "live/nb.ipynb",
                version,
                [
                    {"op": "insert", "after_cell_id": "first", "source": "y = x + 41"},
                    {"op": "insert", "cell_type": "markdown", "source": "The answer follows."},
                ],
            )
        ]
    )
    session_id = launch_in(lab, "live")
    reply = chat(lab, session_id, "add the next step")
    assert "inserted" in reply["text"], reply
    # the page shows the agent's cells: no reload, no dialog
    cells = notebook.locator(".jp-Cell")
    expect(cells).to_have_count(3)
    expect(cells.nth(1)).to_contain_text("y = x + 41")
    expect(cells.nth(2)).to_contain_text("The answer follows.")
    expect(lab.page.locator(".jp-Dialog")).to_have_count(0)

    # the user types and does not save; the agent tries again on what it read
    version = file_version(lab, "live/nb.ipynb")
    lab_model.add_scenarios(
        [
            edit_scenario(
                "rewrite the first cell",
                "live/nb.ipynb",
                version,
                [{"op": "replace", "cell_id": "first", "source": "x = 'agent'"}],
            )
        ]
    )
    editor = cells.nth(0).locator(".cm-content")
    editor.click()
    lab.page.keyboard.press("End")
    lab.page.keyboard.type("  # mine, unsaved")
    expect(cells.nth(0)).to_contain_text("# mine, unsaved")
    lab.page.wait_for_timeout(1500)  # the typing settles and the page's report arrives
    reply = chat(lab, session_id, "rewrite the first cell")
    assert "unsaved changes" in reply["text"], reply
    expect(cells.nth(0)).to_contain_text("x = 1  # mine, unsaved")
    on_disk = nbformat.read(folder / "nb.ipynb", as_version=4)
    assert on_disk.cells[0].source == "x = 1"
    assert lab.take_errors() == []


def test_open_an_agent_here_on_a_folder_of_the_file_browser(lab: Lab) -> None:
    project_folder(lab, "here")
    before = session_ids(lab.server)
    page = lab.page
    lab.execute("filebrowser:activate")
    item = page.locator(".jp-DirListing-item[data-isdir='true']", has_text="here")
    expect(item).to_be_visible()
    item.click(button="right")
    page.locator(".lm-Menu-itemLabel", has_text="Open an Agent Here…").click()
    dialog = page.locator(".jp-Dialog")
    expect(dialog).to_contain_text("The agent works in here")
    dialog.locator("[data-testid=launch-here-preset]").select_option("code-assistant")
    dialog.locator("button", has_text="Launch").click()
    for _ in range(100):
        new = session_ids(lab.server) - before
        if new:
            break
        page.wait_for_timeout(100)
    (session_id,) = new
    details = lab.server.get(f"agents/sessions/{session_id}").json()
    assert details["folder"] == "here" and details["workspace_readonly"] is False
    # the panel shows the new session, and where it works
    expect(lab.page.locator("[data-testid=session-pane]")).to_be_visible()
    expect(lab.page.locator("[data-testid=session-usage]")).to_contain_text("in here")
    assert lab.take_errors() == []


CODE_REPLY = (
    "Here is the next step:\n\n```python\nimport math\n# %% [markdown]\n# ## Roots\n"
    "# %%\nroots = [math.sqrt(n) for n in range(4)]\n```\n"
)


def test_insert_as_cells_puts_a_code_block_of_the_chat_into_the_active_notebook(
    lab: Lab, lab_model: ScriptedModelServer, tmp_path: Path
) -> None:
    project_folder(lab, "insert")
    lab_model.add_scenarios([{"match": "show me the next step", "steps": [], "final": CODE_REPLY}])
    notebook = open_notebook(lab, "insert/nb.ipynb")
    notebook.locator(".jp-Cell").first.click()  # the active cell: the first
    panel = AgentsPanel(lab)
    panel.open()
    panel.launch("code-assistant")
    panel.send("show me the next step")
    reply = panel.assistant_says("Here is the next step")
    reply.get_by_test_id("insert-as-cells").click()
    cells = notebook.locator(".jp-Cell")
    expect(cells).to_have_count(4)
    expect(cells.nth(1)).to_contain_text("import math")
    expect(cells.nth(2)).to_have_class(re.compile("jp-MarkdownCell"))
    expect(cells.nth(2)).to_contain_text("Roots")
    expect(cells.nth(3)).to_contain_text("roots = [math.sqrt(n) for n in range(4)]")

    # a Python file of the workspace, from the Files tab: below the active cell (the last
    # inserted one), split at its # %% marks
    script = tmp_path / "steps.py"
    script.write_text("a = 1\n# %%\nb = a + 1\n")
    panel.tid("tab-files").click()
    panel.tid("upload-input").set_input_files(str(script))
    expect(panel.tid("upload-progress").last).to_have_attribute("data-state", "done")
    panel.file_entry("steps.py").get_by_test_id("file-insert-cells").click()
    expect(cells).to_have_count(6)
    expect(cells.nth(4)).to_contain_text("a = 1")
    expect(cells.nth(5)).to_contain_text("b = a + 1")
    assert lab.take_errors() == []


def test_agent_cells_writes_the_reply_as_cells_below_once(
    lab: Lab, lab_model: ScriptedModelServer
) -> None:
    folder = project_folder(lab, "cells")
    nb = nbformat.read(folder / "nb.ipynb", as_version=4)
    nb.cells = [
        nbformat.v4.new_code_cell("%load_ext agcluster_jupyter", id="load"),
        nbformat.v4.new_code_cell("%%agent --cells -q\nwrite me the plot", id="ask"),
        nbformat.v4.new_markdown_cell("the user's own cell", id="mine"),
    ]
    nbformat.write(nb, folder / "nb.ipynb")
    reply = "To plot it:\n\n```python\nimport matplotlib\nprint('plotted')\n```\nThat is all."
    lab_model.add_scenarios([{"match": "write me the plot", "steps": [], "final": reply}])
    notebook = open_notebook(lab, "cells/nb.ipynb")
    lab.execute("notebook:run-all-cells")
    cells = notebook.locator(".jp-Cell")
    expect(cells).to_have_count(6, timeout=120_000)
    expect(cells.nth(2)).to_contain_text("To plot it:")
    expect(cells.nth(3)).to_contain_text("print('plotted')")
    expect(cells.nth(3)).to_have_class(re.compile("jp-CodeCell"))
    expect(cells.nth(4)).to_contain_text("That is all.")
    expect(cells.nth(5)).to_contain_text("the user's own cell")
    expect(cells.nth(1).locator(".jp-OutputArea")).to_contain_text("from the agent's reply")
    # a second render of the same output (the notebook reopened) inserts nothing more
    lab.execute("docmanager:save")
    lab.execute("application:close-all")
    notebook = open_notebook(lab, "cells/nb.ipynb")
    lab.page.wait_for_timeout(1000)
    expect(notebook.locator(".jp-Cell")).to_have_count(6)
    assert lab.take_errors() == []
