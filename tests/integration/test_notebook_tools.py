"""The ``jupyter`` MCP tools with the real CLI: the scripted model calls
``mcp__jupyter__*``, the runner forwards each call over its channel, this server runs it
against the grants and Jupyter's ContentsManager.  Grants, staleness, approvals in
``default`` mode, the ``notebook_edit`` event, and restore/undo of an edit outside the
workspace."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import nbformat
import pytest

from agcluster_jupyter.notebooks.cells import version_of

from ..support import (
    CAREFUL,
    chat_sse,
    event_log,
    expect_error,
    next_permission_request,
)
from .agent_tree import AGENT, agent_reachable_root

pytestmark = pytest.mark.cli

jp_root_dir = pytest.fixture(agent_reachable_root, name="jp_root_dir")


def _notebook(path: Path, *sources: str) -> dict[str, Any]:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s, id=f"c{i}") for i, s in enumerate(sources)]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    if os.geteuid() == 0:
        for p in (path.parent, path):
            os.chown(p, AGENT.pw_uid, AGENT.pw_gid)
    return json.loads(path.read_text())


async def _version(api_fetch: Any, path: str) -> str:
    """The version the tools give a notebook: its content as the ContentsManager reads it."""
    response = await api_fetch("api", "contents", *path.split("/"), params={"content": "1"})
    return version_of(json.loads(response.body)["content"])


def _tool(name: str, **args: Any) -> dict[str, Any]:
    return {"tool_use": {"name": f"mcp__jupyter__{name}", "input": args}}


def _results(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == "tool_result"]


async def test_the_agent_reads_and_edits_a_notebook_of_its_folder(
    api: Any, jp_fetch: Any, launched: Any, scripted_model: Any, jp_root_dir: Path
) -> None:
    path = jp_root_dir / "project" / "analysis.ipynb"
    _notebook(path, "import pandas as pd", "df = pd.read_csv('data.csv')")
    version = await _version(jp_fetch, "project/analysis.ipynb")
    edits = [
        {"op": "insert", "after_cell_id": "c1", "source": "df.describe()"},
        {"op": "replace", "cell_id": "c0", "source": "import pandas as pd\nimport numpy as np"},
    ]
    scripted_model.add_scenarios(
        [
            {
                "match": "improve the notebook",
                "steps": [
                    [_tool("list_notebooks")],
                    [_tool("read_notebook", path="project/analysis.ipynb")],
                    [
                        _tool(
                            "edit_notebook",
                            path="project/analysis.ipynb",
                            version=version,
                            edits=edits,
                        )
                    ],
                ],
                "final": "Edited: {result}",
            }
        ]
    )
    session = await launched("code-assistant", workspace="project")
    sid = session["session_id"]
    events = await chat_sse(api, sid, "improve the notebook please")
    listed, read, edited = _results(events)
    assert not any(r["is_error"] for r in (listed, read, edited)), events
    assert json.loads(listed["output"])["notebooks"] == ["project/analysis.ipynb"]
    view = json.loads(read["output"])
    assert [c["id"] for c in view["cells"]] == ["c0", "c1"] and view["version"] == version
    reply = json.loads(edited["output"])
    (new_id,) = reply["inserted"]
    assert reply["replaced"] == ["c0"]

    on_disk = nbformat.read(path, as_version=4)
    assert [c.source for c in on_disk.cells] == [
        "import pandas as pd\nimport numpy as np",
        "df = pd.read_csv('data.csv')",
        "df.describe()",
    ]
    assert on_disk.cells[2].id == new_id
    assert on_disk.cells[2].metadata["agcluster"] == {"session": sid, "turn": 1}
    assert reply["version"] == await _version(jp_fetch, "project/analysis.ipynb")
    # the edit is in the log for an open notebook to follow, and in the checkpoint
    log = await event_log(api, sid)
    (edit_event,) = [e for e in log if e["type"] == "notebook_edit"]
    assert edit_event["path"] == "project/analysis.ipynb"
    assert edit_event["inserted"] == [new_id] and edit_event["version"] == reply["version"]
    checkpoint = next(e for e in log if e["type"] == "checkpoint")
    assert checkpoint["modified"] == 1
    # the model was offered the tools directly (not behind ToolSearch)
    offered = scripted_model.message_requests[0].body["tools"]
    names = {t["name"] for t in offered}
    assert {"mcp__jupyter__read_notebook", "mcp__jupyter__edit_notebook"} <= names
    # and a restore of the turn puts the notebook back as it was
    await api(f"agents/{sid}/checkpoints/1/restore", method="POST", body={})
    assert [c.source for c in nbformat.read(path, as_version=4).cells] == [
        "import pandas as pd",
        "df = pd.read_csv('data.csv')",
    ]


async def test_ungranted_notebooks_and_hostile_paths_are_tool_errors(
    api: Any, launched: Any, scripted_model: Any, jp_root_dir: Path, agent_dirs: dict[str, Path]
) -> None:
    _notebook(jp_root_dir / "project" / "mine.ipynb", "1")
    secret = jp_root_dir / "private" / "secret.ipynb"
    before = _notebook(secret, "password = 'hunter2'")
    outside = agent_dirs["base"] / "outside.ipynb"
    _notebook(outside, "x")
    os.symlink(secret, jp_root_dir / "project" / "link.ipynb")
    attempts = [
        _tool("read_notebook", path="private/secret.ipynb"),
        _tool("read_notebook", path="project/../private/secret.ipynb"),
        _tool("read_notebook", path=str(secret)),
        _tool("read_notebook", path="/workspace/../private/secret.ipynb"),
        _tool("read_notebook", path="project/link.ipynb"),
        _tool(
            "edit_notebook",
            path="private/secret.ipynb",
            version="x",
            edits=[{"op": "delete", "cell_id": "c0"}],
        ),
        _tool("create_notebook", path="private/new.ipynb"),
        _tool("read_notebook", path="project/missing.ipynb"),
    ]
    scripted_model.add_scenarios(
        [{"match": "try everything", "steps": [[a] for a in attempts], "final": "done"}]
    )
    session = await launched("code-assistant", workspace="project")
    events = await chat_sse(api, session["session_id"], "try everything")
    results = _results(events)
    assert len(results) == len(attempts)
    assert all(r["is_error"] for r in results), results
    says = [r["output"] for r in results]
    assert "not granted" in says[0] and "not granted" in says[4] and "not granted" in says[5]
    assert "'..'" in says[1] or ".." in says[1]
    assert "relative to the Jupyter tree" in says[2]
    assert "not granted" in says[6] and "not found" in says[7]
    assert all("hunter2" not in s for s in says)
    assert json.loads(secret.read_text()) == before
    assert not (jp_root_dir / "private" / "new.ipynb").exists()
    assert not any(
        e["type"] == "notebook_edit" for e in await event_log(api, session["session_id"])
    )


async def test_a_stale_version_is_refused_and_nothing_changes(
    api: Any, launched: Any, scripted_model: Any, jp_root_dir: Path
) -> None:
    path = jp_root_dir / "project" / "a.ipynb"
    before = _notebook(path, "x = 1")
    scripted_model.add_scenarios(
        [
            {
                "match": "stale edit",
                "steps": [
                    [
                        _tool(
                            "edit_notebook",
                            path="project/a.ipynb",
                            version="0000000000000000",
                            edits=[{"op": "insert", "source": "y = 2"}],
                        )
                    ]
                ],
                "final": "{result}",
            }
        ]
    )
    session = await launched("code-assistant", workspace="project")
    (result,) = _results(await chat_sse(api, session["session_id"], "stale edit"))
    assert result["is_error"] and result["output"].startswith("stale:")
    assert "read it again" in result["output"]
    assert json.loads(path.read_text()) == before


async def test_a_granted_notebook_outside_the_workspace_is_edited_restored_and_undone(
    api: Any, jp_fetch: Any, launched: Any, scripted_model: Any, jp_root_dir: Path
) -> None:
    path = jp_root_dir / "reports" / "q3.ipynb"
    _notebook(path, "total = 1")
    version = await _version(jp_fetch, "reports/q3.ipynb")
    scripted_model.add_scenarios(
        [
            {
                "match": "fix the report",
                "steps": [
                    [
                        _tool(
                            "edit_notebook",
                            path="reports/q3.ipynb",
                            version=version,
                            edits=[{"op": "replace", "cell_id": "c0", "source": "total = 2"}],
                        )
                    ],
                    [_tool("create_notebook", path="reports/q4.ipynb")],
                ],
                "final": "ok",
            }
        ]
    )
    # a session of its own folder (outside reports/), granted the one notebook
    session = await launched("code-assistant", notebooks=["reports/q3.ipynb", "reports/q4.ipynb"])
    sid = session["session_id"]
    assert session["notebooks"] == ["reports/q3.ipynb", "reports/q4.ipynb"]
    events = await chat_sse(api, sid, "fix the report")
    assert not any(r["is_error"] for r in _results(events)), events
    assert nbformat.read(path, as_version=4).cells[0].source == "total = 2"
    assert (jp_root_dir / "reports" / "q4.ipynb").exists()

    reply = await api(f"agents/{sid}/checkpoints/1/restore", method="POST", body={})
    assert reply["notebooks"] == ["reports/q3.ipynb", "reports/q4.ipynb"]
    assert nbformat.read(path, as_version=4).cells[0].source == "total = 1"
    assert not (jp_root_dir / "reports" / "q4.ipynb").exists()

    undone = await api(f"agents/{sid}/undo", method="POST", body={})
    assert undone["notebooks"] == ["reports/q3.ipynb", "reports/q4.ipynb"]
    assert nbformat.read(path, as_version=4).cells[0].source == "total = 2"
    assert (jp_root_dir / "reports" / "q4.ipynb").exists()


async def test_default_mode_asks_before_an_edit_and_a_denial_changes_nothing(
    api: Any, jp_fetch: Any, launched: Any, scripted_model: Any, jp_root_dir: Path
) -> None:
    import asyncio

    path = jp_root_dir / "nb.ipynb"
    before = _notebook(path, "a = 1")
    version = await _version(jp_fetch, "nb.ipynb")
    scripted_model.add_scenarios(
        [
            {
                "match": "careful edit",
                "steps": [
                    [_tool("read_notebook", path="nb.ipynb")],
                    [
                        _tool(
                            "edit_notebook",
                            path="nb.ipynb",
                            version=version,
                            edits=[{"op": "delete", "cell_id": "c0"}],
                        )
                    ],
                ],
                "final": "{result}",
            }
        ]
    )
    session = await launched(config=CAREFUL, notebooks=["nb.ipynb"])
    sid = session["session_id"]
    turn = asyncio.ensure_future(chat_sse(api, sid, "careful edit"))
    request = await next_permission_request(api, sid, turn)
    # the read asked no one; the edit asks, showing what it would do
    assert request["tool_name"] == "mcp__jupyter__edit_notebook"
    assert request["input"]["edits"] == [{"op": "delete", "cell_id": "c0"}]
    await api(
        f"agents/{sid}/permissions/{request['request_id']}",
        method="POST",
        body={"decision": "deny", "message": "keep my cell"},
    )
    events = await asyncio.wait_for(turn, 120)
    read, edit = _results(events)
    assert not read["is_error"] and edit["is_error"] and "denied" in edit["output"]
    assert json.loads(path.read_text()) == before


async def test_unsaved_changes_in_a_page_hold_the_agent_off_and_edits_are_fed(
    api: Any, jp_fetch: Any, launched: Any, scripted_model: Any, jp_root_dir: Path
) -> None:
    path = jp_root_dir / "project" / "open.ipynb"
    before = _notebook(path, "a = 1")
    version = await _version(jp_fetch, "project/open.ipynb")
    edit = _tool(
        "edit_notebook",
        path="project/open.ipynb",
        version=version,
        edits=[{"op": "insert", "source": "b = 2"}],
    )
    scripted_model.add_scenarios(
        [{"match": "edit the open one", "steps": [[edit]], "final": "{result}"}]
    )
    session = await launched("code-assistant", workspace="project")
    sid = session["session_id"]
    start = await api("notebooks/edits", params={"after": "0"})
    # the user typed in the open notebook and has not saved
    report = {"path": "project/open.ipynb", "dirty": True, "page": "page-1"}
    assert (await api("notebooks/open", method="PUT", body=report))["expires_in"] > 0
    (refused,) = _results(await chat_sse(api, sid, "edit the open one"))
    assert refused["is_error"] and "unsaved changes" in refused["output"]
    assert json.loads(path.read_text()) == before
    # saved: the next try goes through, and the page hears of it
    await api("notebooks/open", method="PUT", body={**report, "dirty": False})
    (done,) = _results(await chat_sse(api, sid, "edit the open one"))
    assert not done["is_error"], done
    fed = await api("notebooks/edits", params={"after": str(start["last"]), "timeout": "5"})
    (item,) = fed["edits"]
    assert (item["path"], item["session_id"]) == ("project/open.ipynb", sid)
    assert item["version"] == json.loads(done["output"])["version"] and fed["last"] == item["n"]
    # nothing new: the poll waits its timeout and says so with no edits
    assert (await api("notebooks/edits", params={"after": str(fed["last"]), "timeout": "1"}))[
        "edits"
    ] == []
    for bad, field in (
        ({"path": "", "dirty": True}, "path"),
        ({"path": "a.ipynb", "dirty": "yes"}, "dirty"),
        ({"path": "a.ipynb", "dirty": True, "tab": 1}, "tab"),
    ):
        reply = await expect_error(api("notebooks/open", method="PUT", body=bad), 400)
        assert reply["field"] == field
    await expect_error(api("notebooks/edits", params={"after": "-1"}), 400)
