"""The example notebooks in ``notebooks/`` run top to bottom: nbclient executes each one in
a real IPython kernel, whose ``%%agent`` cells talk to a real ``jupyter server`` (local
provider, the scripted model behind the gateway, the key in the server's environment only).

Every example notebook (``notebooks/NN-name.ipynb``) is picked up; a notebook with an
entry in ``CHECKS`` also has its outputs and the server's state checked, the others only
have to run without an error. What a notebook saves goes into ``output/<its name>/``.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat import NotebookNode

from agcluster_jupyter.testing.jupyter import JupyterServerProcess
from agcluster_jupyter.testing.server import ScriptedModelServer

from ..support import TEST_KEY, serving

pytestmark = pytest.mark.cli

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
#: the examples, not what running them left next to them (executed copies, duplicates)
EXAMPLES = sorted(
    p for p in NOTEBOOKS.glob("*.ipynb") if re.fullmatch(r"\d\d-[a-z0-9-]+\.ipynb", p.name)
)
CELL_TIMEOUT = 120  # s per cell: a first turn starts the claude CLI


@pytest.fixture(scope="module")
def server() -> Iterator[JupyterServerProcess]:
    """One server for every notebook; sessions are told apart by the checks."""
    with ScriptedModelServer(api_key=TEST_KEY) as model:
        with serving(JupyterServerProcess(model.url, TEST_KEY)) as proc:
            yield proc


def kernel_env(server: JupyterServerProcess) -> dict[str, str]:
    """What a kernel started by that server would see: its URL and token, no model key."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "JUPYTER"))}
    env.update(
        JUPYTER_SERVER_URL=f"http://127.0.0.1:{server.port}/",
        JUPYTER_TOKEN=server.token,
        JUPYTER_PLATFORM_DIRS="1",
    )
    return env


def execute(path: Path, folder: Path, env: dict[str, str]) -> NotebookNode:
    """Run a copy of the notebook in ``folder`` (the kernel's cwd); the executed notebook.

    Runs on an event loop of its own, in a thread of its own, so it never meets
    pytest-asyncio's loops and is closed when done.
    """
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=CELL_TIMEOUT,
        startup_timeout=60,
        resources={"metadata": {"path": str(folder)}},
    )
    with ThreadPoolExecutor(1) as pool:
        executed: NotebookNode = pool.submit(asyncio.run, client.async_execute(env=env)).result()
    nbformat.write(executed, folder / path.name)  # kept for a look when a check fails
    return executed


# -- reading outputs -------------------------------------------------------------------


def output_text(cell: NotebookNode) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if out["output_type"] == "stream":
            parts.append(out["text"])
        elif out["output_type"] == "error":
            parts.append("\n".join(out["traceback"]))
        else:
            data = out.get("data", {})
            parts.append(data.get("text/markdown") or data.get("text/plain") or "")
    return "\n".join(parts)


def cell(nb: NotebookNode, source_start: str) -> str:
    """The text output of the one code cell whose source starts with ``source_start``."""
    found = [
        c for c in nb.cells if c.cell_type == "code" and c.source.lstrip().startswith(source_start)
    ]
    assert len(found) == 1, f"{len(found)} cells start with {source_start!r}"
    return output_text(found[0])


def new_sessions(server: JupyterServerProcess, before: set[str]) -> dict[str, dict[str, Any]]:
    """The sessions the notebook launched and left on the server, by name, with details
    (a session stopped with ``--purge`` is gone)."""
    listed = server.get("agents/sessions").json()["sessions"]
    found = {}
    for s in listed:
        if s["session_id"] not in before:
            details = server.get(f"agents/sessions/{s['session_id']}").json()
            found[s.get("name") or s["config_id"]] = details
    return found


# -- per-notebook checks ---------------------------------------------------------------


@dataclass
class Run:
    """One executed notebook: the notebook with outputs, the kernel's folder, the sessions
    it left on the server (by name), and the server."""

    nb: NotebookNode
    folder: Path
    sessions: dict[str, dict[str, Any]]
    server: JupyterServerProcess


def check_quickstart(run: Run) -> None:
    nb, folder, sessions = run.nb, run.folder, run.sessions
    assert set(sessions) == {"code-assistant"}
    session = sessions["code-assistant"]
    assert session["state"] == "stopped"
    # the cell streamed into a live widget (an awaited cell in the real kernel), and its
    # output keeps a Markdown snapshot of the turn for renderers without the kernel
    [agent_cell] = [c for c in nb.cells if c.source.startswith("%%agent code-assistant")]
    [shown] = [o for o in agent_cell.outputs if o["output_type"] == "display_data"]
    assert "application/vnd.jupyter.widget-view+json" in shown["data"]
    # the snapshot is sanitized HTML (never text/markdown) and its Markdown as plain text
    assert "text/markdown" not in shown["data"]
    assert shown["metadata"]["agcluster"]["session_id"] == session["session_id"]
    assert "<blockquote>" in shown["data"]["text/html"]
    snapshot = shown["data"]["text/plain"]
    assert snapshot.startswith("> Write a script called analysis.py")
    assert "Saturday is the warmest day" in snapshot
    # the widget's state is saved with the notebook, so the view renders without a kernel
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    assert shown["data"]["application/vnd.jupyter.widget-view+json"]["model_id"] in state
    # the agent wrote and ran its script: the demo model's reply, the tool calls, the file
    assert "`analysis.py`" in cell(nb, "reply = _")
    assert "'Write': 1" in cell(nb, "from collections import Counter")
    assert "'Bash': 2" in cell(nb, "from collections import Counter")
    assert (Path(session["workspace"]) / "analysis.py").is_file()
    assert "analysis.py" in cell(nb, "%agent files").split()
    # downloaded into the notebook's output folder and run there
    out = folder / "output" / "01-quickstart"
    assert (out / "analysis.py").is_file()
    assert "warmest: Sat (25.4 C)" in cell(nb, "%agent download")
    assert session["session_id"][:12] in cell(nb, "%agent sessions")
    assert "[code-assistant]" in cell(nb, "%agent sessions")
    export = (out / "agent-code-assistant.md").read_text()
    assert "analysis.py" in export and "scripted demo model" in export
    assert f"stopped {session['session_id'][:12]}" in cell(nb, "%agent stop")


def check_two_sessions(run: Run) -> None:
    nb, sessions, server = run.nb, run.sessions, run.server
    assert set(sessions) == {"a"}  # b was purged
    a = sessions["a"]
    assert a["config_id"] == "code-assistant" and a["state"] == "stopped" and a["turns"] == 2
    ids = dict(
        line.removeprefix("session ").split(": ")
        for line in cell(nb, 'print("session a:"').splitlines()
    )
    assert ids["a"] == a["session_id"] != ids["b"]
    assert ids["different sessions"] == "True"
    files = cell(nb, 'print("files of a:")')
    assert files.split("\n")[:4] == ["files of a:", "analysis.py", "files of b:", "(no files yet)"]
    assert "same session as before: True" in cell(nb, 'print("same session as before')
    # a's workspace is kept, b's purged with its record
    assert (Path(a["workspace"]) / "analysis.py").is_file()
    assert server.get(f"agents/sessions/{ids['b']}").status_code == 404
    assert not (server.folders["workspace_root"] / ids["b"]).exists()
    assert "[a]" in cell(nb, "%agent sessions") and "[b]" in cell(nb, "%agent sessions")
    assert f"stopped {ids['b'][:12]} and purged its workspace" in cell(nb, "%agent stop a")


def check_data_analysis(run: Run) -> None:
    nb, folder, sessions = run.nb, run.folder, run.sessions
    [name] = sessions
    session = sessions[name]
    assert session["config_id"] == "data-analysis" and session["state"] == "stopped"
    workspace = Path(session["workspace"])
    # --with sales: the DataFrame went in as CSV, and the prompt told the agent about it
    assert (workspace / "sales.csv").read_text().splitlines()[0] == "region,units,revenue"
    [agent_cell] = [c for c in nb.cells if c.source.startswith("%%agent data-analysis")]
    widget, *images = [o for o in agent_cell.outputs if o["output_type"] == "display_data"]
    snapshot = widget["data"]["text/plain"]
    assert "> Plot units by region from sales.csv" in snapshot
    assert "sales.csv: DataFrame, 4 rows × 3 columns: region, units, revenue" in snapshot
    # the chart the agent drew during the turn is an output of the cell
    [image] = images
    # an SVG is shown as an <img> of a data: URI, never inlined as markup
    assert image["metadata"]["agcluster"]["path"] == "figures/chart.svg"
    assert set(image["data"]) == {"text/html", "text/plain"}
    prefix = '<img src="data:image/svg+xml;base64,'
    assert image["data"]["text/html"].startswith(prefix)
    encoded = image["data"]["text/html"][len(prefix) :].split('"', 1)[0]
    assert "units by region" in base64.b64decode(encoded).decode()
    assert (workspace / "figures" / "chart.svg").is_file()
    said = cell(nb, 'print(analysis["text"])')
    assert "figures/chart.svg" in said and "images: ['figures/chart.svg']" in said
    assert cell(nb, "%agent download sales.csv").strip().endswith("True")
    assert (folder / "output" / "02-data-analysis" / "sales-from-agent.csv").is_file()
    # %agent show: a widget with the session's whole history
    [shown] = [o for o in nb.cells if o.source.startswith("%agent show")][0].outputs
    assert "application/vnd.jupyter.widget-view+json" in shown["data"]


def check_approvals(run: Run) -> None:
    nb, sessions = run.nb, run.sessions
    assert sessions == {}  # stopped with --purge
    asked = cell(nb, "asked = [")
    assert "requests: [('Write', 'notes.md')]" in asked and "tool ran: [True]" in asked
    answered = cell(nb, "from agcluster_jupyter.kernel.client import AgClusterClient")
    assert "asked: Write notes.md" in answered
    assert "denied:" in answered and "not now, thanks" in answered, answered
    # the agent's reply after the refusal says so, and never that it wrote the note
    said = answered.split("denied:", 1)[1]
    assert "agent: I could not write `notes.md`: the Write was refused (not now" in said, said
    assert "Noted" not in said, said
    assert "and purged its workspace" in cell(nb, "%agent stop code-assistant:default")


CHECKS: dict[str, Callable[[Run], None]] = {
    "01-quickstart": check_quickstart,
    "02-data-analysis": check_data_analysis,
    "03-two-sessions": check_two_sessions,
    "04-approvals": check_approvals,
}


# -- the tests -------------------------------------------------------------------------


def test_every_notebook_is_clean() -> None:
    """Stored without outputs, on the ``python3`` kernel, and at least the ones checked."""
    assert {p.stem for p in EXAMPLES} >= set(CHECKS)
    for path in EXAMPLES:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        assert nb.metadata.kernelspec.name == "python3", path.name
        for c in nb.cells:
            if c.cell_type == "code":
                assert not c.outputs and c.execution_count is None, f"{path.name}: outputs"


def test_kernel_is_this_python() -> None:
    """``python3`` runs the interpreter running the tests (the one with the package)."""
    from jupyter_client.manager import KernelManager

    km = KernelManager(kernel_name="python3")
    assert km.format_kernel_cmd()[0] == sys.executable


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_notebook_runs(
    path: Path, server: JupyterServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = tmp_path_factory.mktemp(path.stem)
    before = {s["session_id"] for s in server.get("agents/sessions").json()["sessions"]}
    nb = execute(path, folder, kernel_env(server))
    errors = [
        output_text(c)
        for c in nb.cells
        if any(o["output_type"] == "error" for o in c.get("outputs", []))
    ]
    assert not errors, errors[0]
    # what it saved is in its own output folder, nothing next to the notebook
    left = sorted(p.name for p in folder.iterdir() if p.name not in (path.name, "output"))
    assert not left, left
    saved = {p.relative_to(folder).parts[:2] for p in folder.glob("output/**/*") if p.is_file()}
    assert saved <= {("output", path.stem)}, saved
    sessions = new_sessions(server, before)
    check = CHECKS.get(path.stem)
    if check is not None:
        check(Run(nb, folder, sessions, server))
    else:  # a notebook without checks of its own: its sessions at least ran a turn
        assert sessions and all(s["turns"] >= 1 for s in sessions.values()), sessions
