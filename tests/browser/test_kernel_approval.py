"""An agent asks to run a cell in the user's kernel, in a real JupyterLab: the panel's
approval card shows the notebook and the exact code; Approve runs it in the kernel the
open notebook uses, and its output appears in the open notebook (no reload by the user).
A denied run changes nothing in the kernel."""

from __future__ import annotations

import httpx
import nbformat
import pytest

from agcluster_jupyter.testing.server import ScriptedModelServer

from ..support import parse_sse
from .agents_panel import AgentsPanel, expect
from .conftest import ARTIFACTS, Lab
from .notebook_pages import open_notebook, project_folder

pytestmark = pytest.mark.browser

CELL = "total = sum(range(10))\nprint('total is', total)"


def _run_scenario(match: str, path: str, cell_id: str) -> dict[str, object]:
    call = {"name": "mcp__jupyter__run_cell", "input": {"notebook": path, "cell_id": cell_id}}
    return {"match": match, "steps": [[{"tool_use": call}]], "final": "The cell ran: {result}"}


def test_the_approval_card_shows_the_code_and_approve_runs_it_in_the_open_notebook(
    lab: Lab, lab_model: ScriptedModelServer
) -> None:
    folder = project_folder(lab, "kernel")
    nb = nbformat.read(folder / "nb.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(CELL, id="sum"))
    nbformat.write(nb, folder / "nb.ipynb")
    notebook = open_notebook(lab, "kernel/nb.ipynb")
    lab.wait_until(
        lambda: any(
            s["path"] == "kernel/nb.ipynb" and s.get("kernel")
            for s in lab.server.get("../sessions").json()
        ),
        "the notebook's kernel session",
    )
    lab_model.add_scenarios([_run_scenario("run the sum cell", "kernel/nb.ipynb", "sum")])

    # a session granted the notebook, and so the kernel the page runs for it
    reply = lab.server.post(
        "agents/launch", {"config_id": "code-assistant", "notebooks": ["kernel/nb.ipynb"]}
    )
    assert reply.status_code == 201, reply.text
    assert reply.json()["kernels"] == ["kernel/nb.ipynb"]
    session_id = reply.json()["session_id"]

    panel = AgentsPanel(lab)
    panel.open()
    panel.root.locator(f"[data-testid=session-row][data-session-id='{session_id}']").click()
    panel.send("run the sum cell")
    card = panel.tid("permission-request")
    expect(card).to_have_attribute("data-tool-name", "mcp__jupyter__run_cell")
    run = card.get_by_test_id("permission-kernel-run")
    expect(run.get_by_test_id("permission-notebook")).to_have_text("kernel/nb.ipynb")
    code = run.get_by_test_id("permission-code")
    expect(code).to_contain_text("total = sum(range(10))")
    expect(code).to_contain_text("print('total is', total)")
    # highlighted as Python, by JupyterLab's own renderer
    expect(code.locator("pre code, .cm-s-jupyter, [class*=cm-]").first).to_be_attached()
    ARTIFACTS.mkdir(exist_ok=True)
    lab.page.screenshot(path=str(ARTIFACTS / "test_kernel_approval.png"))
    card.get_by_test_id("permission-approve").click()
    said = panel.assistant_says("The cell ran")
    expect(said).to_contain_text('"written_to_notebook": true')

    # it ran in the page's kernel: the output is in the open notebook
    cell = notebook.locator(".jp-CodeCell").nth(1)
    expect(cell.locator(".jp-OutputArea")).to_contain_text("total is 45")
    expect(lab.page.locator(".jp-Dialog")).to_have_count(0)
    log = parse_sse(lab.server.get(f"agents/{session_id}/events?follow=false").text)
    calls = [e for e in log if e["type"] == "kernel_call"]
    assert [(c["tool"], c["outcome"]) for c in calls] == [("run_cell", "ok")]
    assert lab.take_errors() == []


def test_a_restarted_kernel_is_granted_again_from_the_refused_call(
    lab: Lab, lab_model: ScriptedModelServer
) -> None:
    folder = project_folder(lab, "restart")
    nb = nbformat.read(folder / "nb.ipynb", as_version=4)
    nbformat.write(nb, folder / "nb.ipynb")
    open_notebook(lab, "restart/nb.ipynb")
    lab.wait_until(lambda: _kernel_id(lab, "restart/nb.ipynb"), "the notebook's kernel")
    look = {
        "name": "mcp__jupyter__list_variables",
        "input": {"notebook": "restart/nb.ipynb"},
    }
    lab_model.add_scenarios(
        [
            {"match": "look at my kernel", "steps": [[{"tool_use": look}]], "final": "Looked."},
            {"match": "look once more", "steps": [[{"tool_use": look}]], "final": "{result}"},
        ]
    )
    reply = lab.server.post(
        "agents/launch", {"config_id": "code-assistant", "notebooks": ["restart/nb.ipynb"]}
    )
    assert reply.json()["kernels"] == ["restart/nb.ipynb"], reply.text
    session_id = reply.json()["session_id"]
    # the user restarts the kernel: a new process, not the one they granted
    kernel_id = _kernel_id(lab, "restart/nb.ipynb")
    restarted = httpx.post(
        f"{lab.root}api/kernels/{kernel_id}/restart", headers=lab.server.headers, timeout=60
    )
    assert restarted.status_code == 200, restarted.text

    panel = AgentsPanel(lab)
    panel.open()
    panel.root.locator(f"[data-testid=session-row][data-session-id='{session_id}']").click()
    panel.send("look at my kernel")
    panel.assistant_says("Looked.")
    call = panel.tool_call("mcp__jupyter__list_variables")
    expect(call).to_have_attribute("data-status", "error")
    call.get_by_test_id("grant-kernel").click()
    expect(call.get_by_test_id("grant-kernel-result")).to_contain_text(
        f"Granted: the kernel {kernel_id} of restart/nb.ipynb"
    )
    panel.send("look once more")
    said = panel.assistant_says('"variables"')
    expect(said).not_to_contain_text("not granted")
    assert lab.take_errors() == []


def _kernel_id(lab: Lab, path: str) -> str:
    sessions = httpx.get(f"{lab.root}api/sessions", headers=lab.server.headers).json()
    for session in sessions:
        if session["path"] == path and session.get("kernel"):
            return str(session["kernel"]["id"])
    return ""
