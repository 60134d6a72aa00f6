"""The notebook tools on a notebook open with real-time collaboration: the real
jupyter_server_ydoc in this server, a real room (as a page opening the notebook makes
one), the tools reading and editing the room's shared document.

- read_notebook reads the room (typing not yet saved included);
- edit_notebook changes only the cells it names, in the room, and the room saves at once;
- a change in the room since the read is stale; an unsaved-changes report does not hold
  off an edit of a shared document (the room merges it);
- the session is present in the room's awareness under its name, and leaves it;
- a restore's put-back goes through the room too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat
import pytest

from agcluster_jupyter.notebooks.cells import version_of
from agcluster_jupyter.notebooks.grants import NotebookGrants, ToolError
from agcluster_jupyter.notebooks.tools import NotebookTools, ToolContext

pytest.importorskip("jupyter_server_ydoc", reason="the [collaboration] extra is not installed")


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    config = json.loads(json.dumps(jp_server_config))
    config["ServerApp"]["jpserver_extensions"].update(
        {"jupyter_server_ydoc": True, "jupyter_server_fileid": True}
    )
    config["YDocExtension"] = {"session_store_path": str(tmp_path / "rtc-sessions.json")}
    return config


@pytest.fixture(autouse=True)
def _ystore_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a room made by get_document(create=True) opens its store without the config, at
    # .jupyter_ystore.db in the current folder
    monkeypatch.chdir(tmp_path)


def _write(root: Path, name: str, *sources: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s, id=f"c{i}") for i, s in enumerate(sources)]
    nbformat.write(nb, root / name)


async def _open_room(serverapp: Any, name: str) -> Any:
    """The room a page opening the notebook would make, and its shared notebook."""
    extension = serverapp.web_app.settings["jupyter_server_ydoc"]
    document = await extension.get_document(
        path=name, content_type="notebook", file_format="json", copy=False, create=True
    )
    assert document is not None
    return document


def _tools(agcluster_app: Any) -> NotebookTools:
    access = agcluster_app.manager.notebook_access
    assert access is not None
    tools: NotebookTools = access.tools
    return tools


def _ctx(root: Path, *notebooks: str) -> ToolContext:
    grants = NotebookGrants.build(root, folder=None, notebooks=notebooks)
    return ToolContext(grants=grants, session_id="s" * 32, session_name="tidy-heron", turn=1)


def _on_disk(root: Path, name: str) -> list[str]:
    cells = json.loads((root / name).read_text())["cells"]
    return ["".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in cells]


async def test_an_edit_goes_into_the_open_room(
    jp_serverapp: Any, agcluster_app: Any, jp_root_dir: Path
) -> None:
    _write(jp_root_dir, "shared.ipynb", "import pandas as pd", "df = pd.read_csv('d.csv')")
    document = await _open_room(jp_serverapp, "shared.ipynb")
    tools, ctx = _tools(agcluster_app), _ctx(jp_root_dir, "shared.ipynb")
    # a page of the room: the user typed into the first cell, not saved yet
    page = _page_of(document)
    _type(page, 0, "  # typed")
    _sync(page, document)

    view = await tools.call("read_notebook", {"path": "shared.ipynb"}, ctx)
    assert [c["source"] for c in view["cells"]] == [
        "import pandas as pd  # typed",
        "df = pd.read_csv('d.csv')",
    ]
    assert view["version"] == version_of(json.loads(json.dumps(document.get())))

    # the page says it has unsaved changes: a shared document merges the edit anyway
    tools.open_notebooks.report("shared.ipynb", dirty=True, page="p1")
    # ...and the user goes on typing while the edit is made (their page syncs after)
    _type(page, 0, " and more")
    result = await tools.call(
        "edit_notebook",
        {
            "path": "shared.ipynb",
            "version": view["version"],
            "edits": [
                {"op": "insert", "after_cell_id": "c1", "source": "df.describe()"},
                {"op": "replace", "cell_id": "c1", "source": "df = pd.read_parquet('d.pq')"},
            ],
        },
        ctx,
    )
    assert len(result["inserted"]) == 1 and result["replaced"] == ["c1"]
    agent_sources = [
        "import pandas as pd  # typed",
        "df = pd.read_parquet('d.pq')",
        "df.describe()",
    ]
    assert [str(c["source"]) for c in document.ycells] == agent_sources
    assert document.ycells[2]["metadata"]["agcluster"]["session"] == ctx.session_id
    # saved at once: the turn's checkpoint holds it (with the typing the room had)
    assert _on_disk(jp_root_dir, "shared.ipynb") == agent_sources
    assert result["version"] == version_of(json.loads(json.dumps(document.get())))
    assert ctx.edit is not None and ctx.edit.inserted == result["inserted"]
    # cell by cell, so the page merges both: the typing made during the edit stays, in a
    # cell the edit left alone (a whole-notebook replace would have dropped it)
    _sync(page, document)
    merged = ["import pandas as pd  # typed and more", *agent_sources[1:]]
    assert [str(c["source"]) for c in document.ycells] == merged
    assert [str(c["source"]) for c in page.ycells] == merged

    # the session is among the room's collaborators, by its name
    room = _room_of(jp_serverapp, document)
    names = [s.get("user", {}).get("name") for s in room.awareness.states.values()]
    assert "tidy-heron" in names
    tools.shared.leave(ctx.session_id)  # type: ignore[union-attr]
    names = [s.get("user", {}).get("name") for s in room.awareness.states.values()]
    assert "tidy-heron" not in names


def _type(replica: Any, index: int, text: str) -> None:
    """Typing at the end of a cell (in place, as an editor does)."""
    source = replica.ycells[index]["source"]
    source += text


def _page_of(document: Any) -> Any:
    """A second replica of the room's document, as a browser page holds one."""
    from jupyter_ydoc import YNotebook
    from pycrdt import Doc

    page = YNotebook(Doc())
    page.ydoc.apply_update(document.ydoc.get_update())
    return page


def _sync(a: Any, b: Any) -> None:
    """Exchange what each replica lacks (the room's sync protocol, in one step)."""
    to_b = a.ydoc.get_update(b.ydoc.get_state())
    to_a = b.ydoc.get_update(a.ydoc.get_state())
    b.ydoc.apply_update(to_b)
    a.ydoc.apply_update(to_a)


def _room_of(serverapp: Any, document: Any) -> Any:
    extension = serverapp.web_app.settings["jupyter_server_ydoc"]
    for room in extension.ywebsocket_server.rooms.values():
        if getattr(room, "_document", None) is document:
            return room
    raise AssertionError("no room holds the document")


async def test_typing_elsewhere_since_the_read_does_not_hold_an_edit_off(
    jp_serverapp: Any, agcluster_app: Any, jp_root_dir: Path
) -> None:
    """The user types in one cell while the agent works on another: the edit, given the
    version the agent read, applies to the notebook as it is now, the typing kept."""
    _write(jp_root_dir, "two.ipynb", "a = 1", "b = 2")
    document = await _open_room(jp_serverapp, "two.ipynb")
    tools, ctx = _tools(agcluster_app), _ctx(jp_root_dir, "two.ipynb")
    view = await tools.call("read_notebook", {"path": "two.ipynb"}, ctx)
    _type(document, 0, "  # the user's")
    result = await tools.call(
        "edit_notebook",
        {
            "path": "two.ipynb",
            "version": view["version"],
            "edits": [
                {"op": "replace", "cell_id": "c1", "source": "b = 3"},
                {"op": "insert", "after_cell_id": "c1", "source": "a + b"},
            ],
        },
        ctx,
    )
    assert [str(c["source"]) for c in document.ycells] == ["a = 1  # the user's", "b = 3", "a + b"]
    # the version it returns is what the agent edits next from
    _type(document, 0, "!")
    await tools.call(
        "edit_notebook",
        {
            "path": "two.ipynb",
            "version": result["version"],
            "edits": [{"op": "delete", "cell_id": result["inserted"][0]}],
        },
        ctx,
    )
    assert [str(c["source"]) for c in document.ycells] == ["a = 1  # the user's!", "b = 3"]


async def test_a_change_in_the_room_since_the_read_is_stale(
    jp_serverapp: Any, agcluster_app: Any, jp_root_dir: Path
) -> None:
    _write(jp_root_dir, "busy.ipynb", "a = 1")
    document = await _open_room(jp_serverapp, "busy.ipynb")
    tools, ctx = _tools(agcluster_app), _ctx(jp_root_dir, "busy.ipynb")
    view = await tools.call("read_notebook", {"path": "busy.ipynb"}, ctx)
    _type(document, 0, "\nb = 2")  # the user, after the agent read, in the cell it edits
    with pytest.raises(ToolError, match="^stale"):
        await tools.call(
            "edit_notebook",
            {
                "path": "busy.ipynb",
                "version": view["version"],
                "edits": [{"op": "delete", "cell_id": "c0"}],
            },
            ctx,
        )
    assert [str(c["source"]) for c in document.ycells] == ["a = 1\nb = 2"]
    assert ctx.edit is None


async def test_a_put_back_goes_through_the_room(
    jp_serverapp: Any, agcluster_app: Any, jp_root_dir: Path
) -> None:
    _write(jp_root_dir, "undo.ipynb", "x = 1", "y = 2")
    document = await _open_room(jp_serverapp, "undo.ipynb")
    tools = _tools(agcluster_app)
    earlier = await tools.current("undo.ipynb")
    assert earlier is not None
    _type(document, 1, "  # the agent's")
    changed = await tools.put_back({"undo.ipynb": earlier})
    assert changed == ["undo.ipynb"]
    assert [str(c["source"]) for c in document.ycells] == ["x = 1", "y = 2"]
    assert _on_disk(jp_root_dir, "undo.ipynb") == ["x = 1", "y = 2"]


async def test_without_a_room_the_file_is_edited(
    jp_serverapp: Any, agcluster_app: Any, jp_root_dir: Path
) -> None:
    """Collaboration loaded, the notebook not open: the ContentsManager path, as before."""
    _write(jp_root_dir, "closed.ipynb", "a = 1")
    tools, ctx = _tools(agcluster_app), _ctx(jp_root_dir, "closed.ipynb")
    assert tools.shared is not None and tools.shared.enabled
    assert await tools.shared.get("closed.ipynb") is None
    view = await tools.call("read_notebook", {"path": "closed.ipynb"}, ctx)
    await tools.call(
        "edit_notebook",
        {
            "path": "closed.ipynb",
            "version": view["version"],
            "edits": [{"op": "insert", "source": "b = 2"}],
        },
        ctx,
    )
    assert _on_disk(jp_root_dir, "closed.ipynb") == ["a = 1", "b = 2"]
