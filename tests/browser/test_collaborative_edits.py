"""An agent edits a notebook the user has open in JupyterLab with real-time collaboration
(jupyter-collaboration, on in this module's server only): the real CLI calls the jupyter
tools, the server puts the edit into the notebook's shared document, and the page shows
the agent's cells as a collaborator's, with the session among the collaborators, the
user's typing (made after the agent read the notebook, not saved by the user) kept, and no
"file changed on disk" dialog.  Restoring the turn from the panel puts the notebook back
in the page."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import nbformat
import pytest

from agcluster_jupyter.testing.jupyter import JupyterServerProcess
from agcluster_jupyter.testing.server import ScriptedModelServer

from .agents_panel import AgentsPanel, expect
from .conftest import ARTIFACTS, Lab, lab_server_process
from .notebook_pages import chat, edit_scenario, launch_in, open_notebook, project_folder

pytestmark = pytest.mark.browser
pytest.importorskip("jupyter_server_ydoc", reason="the [collaboration] extra is not installed")


@pytest.fixture(scope="module")
def lab_server(lab_model: ScriptedModelServer) -> Iterator[JupyterServerProcess]:
    with lab_server_process(lab_model, collaboration=True) as started:
        yield started


def _collaborators(lab: Lab) -> list[str]:
    """The names in the open notebook's awareness (what the page shows as collaborators)."""
    names: list[str] = lab.page.evaluate(
        """() => {
            const widget = window.jupyterapp.shell.currentWidget;
            const states = widget.context.model.sharedModel.awareness.getStates();
            return [...states.values()].map(s => (s.user && s.user.name) || '');
        }"""
    )
    return names


def test_the_agents_edit_arrives_as_a_collaborators(
    lab: Lab, lab_model: ScriptedModelServer
) -> None:
    folder = project_folder(lab, "together")
    nb = nbformat.read(folder / "nb.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("y = x * 2", id="second"))
    nbformat.write(nb, folder / "nb.ipynb")
    notebook = open_notebook(lab, "together/nb.ipynb")
    # the page holds the room's shared document (the panel then leaves it to the room)
    collaborative = lab.page.evaluate(
        """() => {
            const model = window.jupyterapp.shell.currentWidget.context.model;
            return [typeof model.collaborative, String(model.collaborative)];
        }"""
    )
    assert collaborative == ["boolean", "true"]

    session_id = launch_in(lab, "together")
    name = lab.server.get(f"agents/sessions/{session_id}").json()["name"]
    # the agent reads the notebook (its version comes back in the reply) ...
    lab_model.add_scenarios(
        [
            {
                "match": "look at the notebook",
                "steps": [
                    [
                        {
                            "tool_use": {
                                "name": "mcp__jupyter__read_notebook",
                                "input": {"path": "together/nb.ipynb"},
                            }
                        }
                    ]
                ],
                "final": "{result}",
            }
        ]
    )
    reply = chat(lab, session_id, "look at the notebook")
    version = re.search(r'"version":\s*"([0-9a-f]{16})"', reply["text"])
    assert version, reply

    # ... the user types in the first cell and does not save ...
    cells = notebook.locator(".jp-Cell")
    editor = cells.nth(0).locator(".cm-content")
    editor.click()
    lab.page.keyboard.press("End")
    lab.page.keyboard.type("  # mine")
    expect(cells.nth(0)).to_contain_text("x = 1  # mine")

    # ... and the agent, on the version it read, replaces the second and adds a third
    lab_model.add_scenarios(
        [
            edit_scenario(
                "improve the notebook",
                "together/nb.ipynb",
                version.group(1),
                [
                    {"op": "replace", "cell_id": "second", "source": "y = x * 3"},
                    {"op": "insert", "after_cell_id": "second", "source": "print(y)"},
                ],
            )
        ]
    )
    reply = chat(lab, session_id, "improve the notebook")
    assert "inserted" in reply["text"], reply
    expect(cells).to_have_count(3)
    expect(cells.nth(1)).to_contain_text("y = x * 3")
    expect(cells.nth(2)).to_contain_text("print(y)")
    expect(cells.nth(0)).to_contain_text("x = 1  # mine")
    expect(lab.page.locator(".jp-Dialog")).to_have_count(0)
    # the session is among the notebook's collaborators, by its name
    lab.wait_until(lambda: name in _collaborators(lab), f"{name!r} among the collaborators")
    # and so in jupyter-collaboration's own panel of who is here
    lab.page.locator(".jp-SideBar [data-id='jp-collaboration-panel']").click()
    expect(lab.page.locator("#jp-collaboration-panel")).to_contain_text(name)
    ARTIFACTS.mkdir(exist_ok=True)
    lab.page.screenshot(path=str(ARTIFACTS / "test_collaborative_edits.png"))
    # the room saved the edit (and the typing it holds): the turn's checkpoint has it
    lab.wait_until(
        lambda: (
            [c.source for c in nbformat.read(folder / "nb.ipynb", as_version=4).cells]
            == ["x = 1  # mine", "y = x * 3", "print(y)"]
        ),
        "the room's save of the edit",
    )

    # the user undoes the agent's turn from the panel: the page shows the notebook before it
    panel = AgentsPanel(lab)
    panel.open()
    panel.root.locator(f"[data-testid=session-row][data-session-id='{session_id}']").click()
    button = panel.root.locator("[data-testid=checkpoint-button][data-turn='2']")
    expect(button).to_have_count(1)
    button.click()
    view = lab.page.locator("#jp-main-dock-panel [data-testid=diff-view]")
    expect(view).to_be_visible()
    view.get_by_test_id("diff-restore").click()
    expect(view.get_by_test_id("diff-message")).to_contain_text("Restored 1 file")
    lab.execute_for_widget("docmanager:open", {"path": "together/nb.ipynb"})
    expect(cells).to_have_count(2)
    expect(cells.nth(1)).to_contain_text("y = x * 2")
    on_disk = json.loads((folder / "nb.ipynb").read_text())
    assert len(on_disk["cells"]) == 2
    assert lab.take_errors() == []
