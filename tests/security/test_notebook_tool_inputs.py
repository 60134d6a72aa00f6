"""The ``jupyter`` tools' inputs are hostile: hypothesis throws arbitrary arguments and
hostile paths (``..``, absolute, NUL, links out of the grants, huge sources, unknown cell
ids, malformed edit lists) at the real tools over Jupyter's real file ContentsManager.

What must hold for every call: a result or a :class:`ToolError` (never another
exception, so never a 500 or a traceback for the agent to read); no file outside the
granted folder changes; a refused edit leaves the notebook byte for byte as it was."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import nbformat
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jupyter_server.services.contents.filemanager import AsyncFileContentsManager

from agcluster_jupyter.notebooks import NotebookGrants, NotebookTools, ToolError
from agcluster_jupyter.notebooks.cells import MAX_SOURCE_CHARS
from agcluster_jupyter.notebooks.tools import ToolContext

PROPS = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))

_PATH_SAMPLES = st.sampled_from(
    [
        "granted/a.ipynb",
        "granted/new.ipynb",
        "granted/../private/secret.ipynb",
        "private/secret.ipynb",
        "granted/link.ipynb",
        "granted/dirlink/secret.ipynb",
        "/workspace/a.ipynb",
        "/workspace/../private/secret.ipynb",
        "/etc/passwd",
        "{outside}",
        "granted/a.ipynb\x00",
        "granted\\a.ipynb",
        "granted/",
        "granted/notes.txt",
        "",
        ".",
        "..",
    ]
)
_PATHS = st.one_of(
    _PATH_SAMPLES,
    _PATH_SAMPLES,
    _PATH_SAMPLES,
    st.text(max_size=40),
    st.integers(),
    st.none(),
    st.lists(st.text(max_size=5), max_size=2),
)
_IDS = st.one_of(
    st.sampled_from(["c0", "c1", "nope", "", "../c0"]), st.text(max_size=10), st.integers()
)
_GOOD_EDIT = st.one_of(
    st.fixed_dictionaries(
        {"op": st.just("insert"), "source": st.text(max_size=20)},
        optional={"after_cell_id": st.sampled_from(["c0", "c1", ""])},
    ),
    st.fixed_dictionaries(
        {
            "op": st.just("replace"),
            "cell_id": st.sampled_from(["c0", "c1"]),
            "source": st.text(max_size=20),
        }
    ),
    st.fixed_dictionaries({"op": st.just("delete"), "cell_id": st.sampled_from(["c0", "c1"])}),
)
_EDIT = st.one_of(
    _GOOD_EDIT,
    st.fixed_dictionaries(
        {
            "op": st.sampled_from(["insert", "replace", "delete", "move", "", None]),
        },
        optional={
            "cell_id": _IDS,
            "after_cell_id": _IDS,
            "cell_type": st.sampled_from(["code", "markdown", "raw", "html", 3]),
            "source": st.one_of(
                st.text(max_size=50),
                st.just("x" * (MAX_SOURCE_CHARS + 1)),
                st.just("a\x00b"),
                st.integers(),
            ),
            "outputs": st.just(
                [{"output_type": "display_data", "data": {"text/html": "<script>"}}]
            ),
        },
    ),
    st.text(max_size=5),
    st.integers(),
    st.none(),
)
_ARGS = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "path": _PATHS,
            "version": st.one_of(
                st.sampled_from(["{version}", "0" * 16]), st.text(max_size=20), st.integers()
            ),
            "edits": st.one_of(st.lists(_EDIT, max_size=6), st.text(max_size=5), st.none()),
            "code": st.text(max_size=10),
        },
    ),
    st.lists(st.integers(), max_size=3),
    st.text(max_size=10),
    st.none(),
)
_VERSION = st.one_of(st.just("{version}"), st.just("{version}"), st.just("0" * 16), st.integers())
#: calls shaped like the tools' own: they get past the argument checks to the grants,
#: the version check and the edits
_SHAPED = st.one_of(
    st.tuples(st.just("read_notebook"), st.fixed_dictionaries({"path": _PATHS})),
    st.tuples(st.just("create_notebook"), st.fixed_dictionaries({"path": _PATHS})),
    st.tuples(
        st.just("edit_notebook"),
        st.fixed_dictionaries(
            {
                "path": st.one_of(st.just("granted/a.ipynb"), _PATHS),
                "version": _VERSION,
                "edits": st.lists(
                    st.one_of(_GOOD_EDIT, _GOOD_EDIT, _GOOD_EDIT, _EDIT), min_size=1, max_size=4
                ),
            }
        ),
    ),
)
_TOOLS = st.sampled_from(
    ["list_notebooks", "read_notebook", "edit_notebook", "create_notebook", "run_code", "", "x"]
)


def _digest(folder: Path) -> dict[str, str]:
    out = {}
    for base, _dirs, names in os.walk(folder):
        for name in names:
            p = Path(base, name)
            if not p.is_symlink():
                out[str(p.relative_to(folder))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@contextmanager
def _tree() -> Iterator[tuple[Path, Path]]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp, "tree")
        outside = Path(tmp, "outside.ipynb")
        for where in (root / "granted", root / "private"):
            where.mkdir(parents=True)
        for path in (root / "granted" / "a.ipynb", root / "private" / "secret.ipynb", outside):
            nb = nbformat.v4.new_notebook()
            nb.cells = [
                nbformat.v4.new_code_cell("x = 1", id="c0"),
                nbformat.v4.new_markdown_cell("m", id="c1"),
            ]
            nbformat.write(nb, path)
        (root / "granted" / "notes.txt").write_text("notes")
        os.symlink(root / "private" / "secret.ipynb", root / "granted" / "link.ipynb")
        os.symlink(root / "private", root / "granted" / "dirlink")
        yield root, outside


async def _call(
    tools: NotebookTools, ctx: ToolContext, tool: str, args: Any
) -> dict[str, Any] | str:
    try:
        return await tools.call(tool, args, ctx)
    except ToolError as exc:
        return str(exc)


@PROPS
@given(
    calls=st.lists(st.one_of(_SHAPED, _SHAPED, st.tuples(_TOOLS, _ARGS)), min_size=1, max_size=6)
)
def test_any_tool_call_is_a_result_or_a_tool_error_and_stays_in_its_grants(
    calls: list[tuple[str, Any]],
) -> None:
    with _tree() as (root, outside):
        contents = AsyncFileContentsManager(root_dir=str(root))
        tools = NotebookTools(contents)
        grants = NotebookGrants.build(root, folder=root / "granted", folder_alias="/workspace")
        private_before = _digest(root / "private")
        outside_before = outside.read_bytes()

        async def run() -> None:
            ctx = ToolContext(grants=grants, session_id="s", turn=1)
            for tool, args in calls:
                if isinstance(args, dict):
                    args = {k: (str(outside) if v == "{outside}" else v) for k, v in args.items()}
                    if args.get("version") == "{version}":
                        view = await tools.call("read_notebook", {"path": "granted/a.ipynb"}, ctx)
                        args["version"] = view["version"]
                before = (root / "granted" / "a.ipynb").read_bytes()
                answer = await _call(tools, ctx, tool, args)
                if isinstance(answer, str):
                    assert answer.split(":", 1)[0] in {
                        "invalid",
                        "not granted",
                        "not found",
                        "stale",
                        "exists",
                    }, answer
                    assert "Traceback" not in answer
                    # a refused call changed nothing
                    assert (root / "granted" / "a.ipynb").read_bytes() == before
                else:
                    json.dumps(answer)  # what the agent reads is JSON
                    assert "password" not in json.dumps(answer)

        asyncio.run(run())
        assert _digest(root / "private") == private_before
        assert outside.read_bytes() == outside_before
        # nothing but notebooks was made, and only in the granted folder
        made = {p.name for p in (root / "granted").iterdir()}
        assert made <= {
            "a.ipynb",
            "new.ipynb",
            "notes.txt",
            "link.ipynb",
            "dirlink",
            ".ipynb_checkpoints",
        }
