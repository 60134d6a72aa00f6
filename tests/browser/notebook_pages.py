"""Notebooks in a browser test's Lab: a project folder the agent user may work in, its
notebook opened in the page, and the agent's edit of it as a scripted model scenario."""

from __future__ import annotations

import os
import pwd
from pathlib import Path
from typing import Any

import httpx
import nbformat

from agcluster_jupyter.notebooks.cells import version_of

from .agents_panel import expect
from .conftest import Lab

__all__ = ["chat", "edit_scenario", "launch_in", "file_version", "open_notebook", "project_folder"]

NOBODY = pwd.getpwnam("nobody")


def project_folder(lab: Lab, name: str) -> Path:
    """A folder of the tree the agent user may work in, with one notebook."""
    folder = lab.server.base / "root" / name
    folder.mkdir()
    # as JupyterLab saves one: with its kernel's metadata (else opening it is a change)
    nb = nbformat.v4.new_notebook(
        metadata={
            "kernelspec": {
                "display_name": "Python 3 (ipykernel)",
                "language": "python",
                "name": "python3",
            },
            "language_info": {"name": "python"},
        }
    )
    nb.cells = [nbformat.v4.new_code_cell("x = 1", id="first")]
    nbformat.write(nb, folder / "nb.ipynb")
    if os.geteuid() == 0:
        for path in (folder, folder / "nb.ipynb"):
            os.chown(path, NOBODY.pw_uid, NOBODY.pw_gid)
    return folder


def file_version(lab: Lab, path: str) -> str:
    """The version the tools give the notebook as its file holds it."""
    response = httpx.get(
        f"{lab.root}api/contents/{path}", headers=lab.server.headers, params={"content": "1"}
    )
    response.raise_for_status()
    return version_of(response.json()["content"])


def edit_scenario(
    match: str, path: str, version: str, edits: list[dict[str, Any]]
) -> dict[str, Any]:
    call = {
        "name": "mcp__jupyter__edit_notebook",
        "input": {"path": path, "version": version, "edits": edits},
    }
    return {"match": match, "steps": [[{"tool_use": call}]], "final": "{result}"}


def launch_in(lab: Lab, folder: str) -> str:
    reply = lab.server.post("agents/launch", {"config_id": "code-assistant", "workspace": folder})
    assert reply.status_code == 201, reply.text
    session_id: str = reply.json()["session_id"]
    return session_id


def chat(lab: Lab, session_id: str, message: str) -> dict[str, Any]:
    reply = lab.server.post(f"agents/{session_id}/chat", {"message": message}, timeout=180)
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def open_notebook(lab: Lab, path: str) -> Any:
    lab.execute("docmanager:open", {"path": path})
    notebook = lab.page.locator(".jp-NotebookPanel:visible")
    expect(notebook.locator(".jp-Cell").first).to_be_visible()
    expect(notebook.locator(".jp-Notebook-ExecutionIndicator[data-status=idle]")).to_have_count(
        1, timeout=60_000
    )
    return notebook
