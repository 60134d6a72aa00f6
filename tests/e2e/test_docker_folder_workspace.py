"""Folder workspaces on the docker provider: the user's folder bind-mounted at
/workspace, written as the folder's owner (never chowned), read-only when asked (the
engine refuses the writes), kept by a purge; its notebooks edited through the server's
jupyter tools by the agent in the container."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import nbformat
import pytest
from jupyter_server.services.sessions.sessionmanager import KernelName, ModelName

from agcluster_jupyter.kernels.door import KernelDoor
from agcluster_jupyter.notebooks.cells import version_of

from ..support import bash_scenario, chat_sse, expect_error, parse_sse
from .docker_support import containers_of, inspect

pytestmark = [pytest.mark.docker, pytest.mark.cli]

#: the user whose work the folder is (the tests run as root; an agent never does)
OWNER = (1000, 1000)


@pytest.fixture
def agcluster_config(docker_config: dict[str, Any]) -> dict[str, Any]:
    return docker_config


@pytest.fixture
def project(jp_root_dir: Path) -> Path:
    folder = jp_root_dir / "project"
    folder.mkdir()
    (folder / "notes.txt").write_text("the user's notes\n")
    for path in (folder, folder / "notes.txt"):
        os.chown(path, *OWNER)
    return folder


def _bash_output(events: list[dict[str, Any]]) -> str:
    return "\n".join(str(e["output"]) for e in events if e["type"] == "tool_result")


async def test_the_users_folder_is_mounted_and_written_as_its_owner(
    api: Any, launched: Any, require_docker: Any, scripted_model: Any, project: Path
) -> None:
    scripted_model.add_scenarios(
        [bash_scenario("add a result", "id -u && cat notes.txt && echo 42 > result.txt")]
    )
    session = await launched("code-assistant", workspace="project")
    sid = session["session_id"]
    (container,) = containers_of(require_docker, sid)
    mounts = {m["Destination"]: m for m in inspect(require_docker, container.id)["Mounts"]}
    assert mounts["/workspace"]["Source"] == str(project.resolve())
    assert mounts["/workspace"]["RW"] is True
    events = await chat_sse(api, sid, "add a result")
    output = _bash_output(events)
    assert "1000" in output and "the user's notes" in output, output
    result = project / "result.txt"
    assert result.read_text() == "42\n"
    assert (result.stat().st_uid, result.stat().st_gid) == OWNER
    assert (project.stat().st_uid, (project / "notes.txt").stat().st_uid) == (1000, 1000)

    await api(f"agents/sessions/{sid}", method="DELETE", params={"purge": "true"})
    assert result.read_text() == "42\n" and (project / "notes.txt").exists()


async def test_a_read_only_folder_is_enforced_by_the_engine(
    api: Any, launched: Any, require_docker: Any, scripted_model: Any, project: Path
) -> None:
    scripted_model.add_scenarios(
        [bash_scenario("try to write", "cat notes.txt; echo evil > notes.txt; touch new.txt")]
    )
    session = await launched("code-assistant", workspace="project", workspace_readonly=True)
    sid = session["session_id"]
    assert session["workspace_readonly"] is True
    (container,) = containers_of(require_docker, sid)
    mounts = {m["Destination"]: m for m in inspect(require_docker, container.id)["Mounts"]}
    assert mounts["/workspace"]["RW"] is False
    events = await chat_sse(api, sid, "try to write")
    assert "Read-only file system" in _bash_output(events), events
    assert (project / "notes.txt").read_text() == "the user's notes\n"
    assert not (project / "new.txt").exists()


async def test_a_root_owned_folder_is_refused(api: Any, jp_root_dir: Path) -> None:
    (jp_root_dir / "roots").mkdir()
    body = {"config_id": "code-assistant", "workspace": "roots"}
    reply = await expect_error(api("agents/launch", method="POST", body=body), 400)
    assert reply["field"] == "workspace" and "never runs as root" in reply["message"]


async def test_the_agent_in_docker_edits_the_users_notebook_through_the_server(
    api: Any,
    jp_fetch: Any,
    launched: Any,
    require_docker: Any,
    scripted_model: Any,
    project: Path,
) -> None:
    """The agent isolated in its container edits a notebook of the user's folder with the
    jupyter tools: the call goes over the runner channel to this server, which writes the
    notebook; a restore of the turn puts it back."""
    path = project / "analysis.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1", id="first")]
    nbformat.write(nb, path)
    os.chown(path, *OWNER)
    response = await jp_fetch("api", "contents", "project", "analysis.ipynb")
    version = version_of(json.loads(response.body)["content"])
    edit = {"op": "insert", "after_cell_id": "first", "source": "y = x + 1"}
    scripted_model.add_scenarios(
        [
            {
                "match": "extend the notebook",
                "steps": [
                    # the container's own view of the folder: /workspace/...
                    [
                        {
                            "tool_use": {
                                "name": "mcp__jupyter__read_notebook",
                                "input": {"path": "/workspace/analysis.ipynb"},
                            }
                        }
                    ],
                    [
                        {
                            "tool_use": {
                                "name": "mcp__jupyter__edit_notebook",
                                "input": {
                                    "path": "project/analysis.ipynb",
                                    "version": version,
                                    "edits": [edit],
                                },
                            }
                        }
                    ],
                ],
                "final": "{result}",
            }
        ]
    )
    session = await launched("code-assistant", workspace="project")
    sid = session["session_id"]
    events = await chat_sse(api, sid, "extend the notebook")
    results = [e for e in events if e["type"] == "tool_result"]
    assert len(results) == 2 and not any(r["is_error"] for r in results), results
    assert json.loads(results[0]["output"])["path"] == "project/analysis.ipynb"
    assert [c.source for c in nbformat.read(path, as_version=4).cells] == ["x = 1", "y = x + 1"]
    await api(f"agents/{sid}/checkpoints/1/restore", method="POST", body={})
    assert [c.source for c in nbformat.read(path, as_version=4).cells] == ["x = 1"]


async def test_the_agent_in_docker_looks_into_the_users_kernel_and_runs_what_was_approved(
    api: Any,
    launched: Any,
    require_docker: Any,
    scripted_model: Any,
    jp_serverapp: Any,
    project: Path,
) -> None:
    """ "Why does my model underfit?": the data-analysis agent, isolated in its container,
    looks at ``df`` in the kernel the user runs for a notebook of the folder, proposes a
    cell and, approved, runs it there; the output lands in the notebook and nothing it was
    not allowed ran (a denied run left the kernel as it was)."""
    path = project / "fit.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("print(len(df), 'rows')", id="check")]
    nbformat.write(nb, path)
    os.chown(path, *OWNER)
    await jp_serverapp.session_manager.create_session(
        path="project/fit.ipynb",
        name=ModelName("fit.ipynb"),
        type="notebook",
        kernel_name=KernelName("python3"),
    )
    door = KernelDoor(jp_serverapp.kernel_manager, jp_serverapp.session_manager)
    ref = await door.kernel_of("project/fit.ipynb")
    setup = "import pandas as pd\ndf = pd.DataFrame({'x': range(5), 'y': [0, 1, 0, 1, 0]})"
    assert (await door.execute(ref, setup, timeout=60)).status == "ok"

    def call(tool: str, **args: Any) -> list[dict[str, Any]]:
        return [{"tool_use": {"name": f"mcp__jupyter__{tool}", "input": args}}]

    scripted_model.add_scenarios(
        [
            {
                "match": "why does my model underfit",
                "steps": [
                    call("inspect_variable", notebook="project/fit.ipynb", name="df"),
                    call("run_code", notebook="project/fit.ipynb", code="df = None"),
                    call("run_cell", notebook="project/fit.ipynb", cell_id="check"),
                ],
                "final": "Looked and ran the check.",
            }
        ]
    )
    session = await launched("data-analysis", workspace="project")
    assert session["kernels"] == ["project/fit.ipynb"], session
    sid = session["session_id"]
    turn = asyncio.ensure_future(chat_sse(api, sid, "why does my model underfit?"))
    answers = iter(["deny", "allow"])
    asked: list[dict[str, Any]] = []
    while len(asked) < 2:
        log = parse_sse(await api(f"agents/{sid}/events", params={"follow": "false"}))
        waiting = [
            e
            for e in log
            if e["type"] == "permission_request"
            and e["request_id"] not in {a["request_id"] for a in asked}
        ]
        if waiting:
            asked.append(waiting[0])
            await api(
                f"agents/{sid}/permissions/{waiting[0]['request_id']}",
                method="POST",
                body={"decision": next(answers)},
            )
        else:
            assert not turn.done(), "the turn ended before both runs asked"
            await asyncio.sleep(0.1)
    events = await asyncio.wait_for(turn, 180)
    inspected, denied, ran = [e for e in events if e["type"] == "tool_result"]
    assert json.loads(inspected["output"])["shape"] == [5, 2]
    assert denied["is_error"] and "denied" in denied["output"]
    assert "5 rows" in json.loads(ran["output"])["outputs"][0]["text"]
    assert [a["input"]["code"] for a in asked] == ["df = None", "print(len(df), 'rows')"]
    cell = nbformat.read(path, as_version=4).cells[0]
    assert "5 rows" in cell.outputs[0]["text"]
    # the denied run did not run: df is still the user's
    check = await door.execute(
        ref, "", timeout=30, silent=True, store_history=False, user_expressions={"n": "len(df)"}
    )
    assert check.user_expressions["n"]["data"]["text/plain"] == "5"
