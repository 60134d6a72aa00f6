"""The notebook as the agent reads it, and edits applied to it: pure functions, as data."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from agcluster_jupyter.notebooks.cells import (
    MAX_EDITS,
    MAX_SOURCE_CHARS,
    EditError,
    apply_edits,
    cell_ids,
    changed_under,
    notebook_view,
    version_of,
)
from agcluster_jupyter.signing import holds_agent_output


def _nb(*cells: dict[str, Any], minor: int = 5) -> dict[str, Any]:
    return {
        "cells": list(cells),
        "metadata": {"language_info": {"name": "python"}},
        "nbformat": 4,
        "nbformat_minor": minor,
    }


def _code(cell_id: str, source: str, outputs: list[Any] | None = None) -> dict[str, Any]:
    return {
        "id": cell_id,
        "cell_type": "code",
        "metadata": {"tags": ["keep"]},
        "source": source,
        "outputs": outputs or [],
        "execution_count": 3 if outputs else None,
    }


def _md(cell_id: str, source: str) -> dict[str, Any]:
    return {"id": cell_id, "cell_type": "markdown", "metadata": {}, "source": source}


NB = _nb(
    _md("intro", "# Analysis"),
    _code(
        "load",
        "df = load()\ndf.head()",
        [
            {"output_type": "stream", "name": "stdout", "text": ["loaded\n", "ok\n"]},
            {
                "output_type": "execute_result",
                "execution_count": 3,
                "metadata": {},
                "data": {"text/plain": "   a  b\n0  1  2", "image/png": "iVBORw0KGgo="},
            },
        ],
    ),
    _code("fit", "model.fit(df)"),
)


def test_the_view_shows_ids_sources_text_outputs_and_a_version() -> None:
    view = notebook_view("p/a.ipynb", NB)
    assert view["path"] == "p/a.ipynb" and view["language"] == "python"
    assert [c["id"] for c in view["cells"]] == ["intro", "load", "fit"]
    load = view["cells"][1]
    assert load["source"] == "df = load()\ndf.head()" and load["execution_count"] == 3
    assert load["outputs"][0] == {"output_type": "stream", "name": "stdout", "text": "loaded\nok\n"}
    # an image is named and sized, never sent as bytes
    assert load["outputs"][1]["text"] == "   a  b\n0  1  2"
    assert load["outputs"][1]["data"] == {"image/png": "<image/png, 12 characters>"}
    assert "outputs" not in view["cells"][0]
    assert view["version"] == version_of(NB) and len(view["version"]) == 16


def test_long_outputs_and_sources_are_capped_and_say_so() -> None:
    huge = "x" * 100_000
    error = {
        "output_type": "error",
        "ename": "ValueError",
        "evalue": "bad",
        "traceback": ["\x1b[0;31mValueError\x1b[0m: bad"] * 2,
    }
    nb = _nb(_code("big", huge, [{"output_type": "stream", "name": "stdout", "text": huge}, error]))
    (cell,) = notebook_view("a.ipynb", nb)["cells"]
    assert cell["source_truncated"] is True and "more characters not shown" in cell["source"]
    assert len(cell["source"]) < 60_000
    assert len(cell["outputs"][0]["text"]) < 2_100
    assert "more characters not shown" in cell["outputs"][0]["text"]
    # errors: name, value and the traceback without terminal colours
    assert cell["outputs"][1]["text"].startswith("ValueError: bad\nValueError: bad")
    assert "\x1b" not in cell["outputs"][1]["text"]


def test_the_version_changes_with_any_change() -> None:
    other = copy.deepcopy(NB)
    other["cells"][2]["source"] = "model.fit(df, y)"
    assert version_of(other) != version_of(NB)
    assert version_of(copy.deepcopy(NB)) == version_of(NB)


def test_insert_replace_delete_apply_in_order_and_mark_the_agents_cells() -> None:
    result = apply_edits(
        NB,
        [
            {"op": "insert", "after_cell_id": "load", "source": "df.describe()"},
            {"op": "insert", "after_cell_id": "", "cell_type": "markdown", "source": "Top"},
            {"op": "insert", "source": "print('end')"},
            {"op": "replace", "cell_id": "fit", "source": "model.fit(df, y)"},
            {"op": "delete", "cell_id": "intro"},
        ],
        marker={"session": "s1", "turn": 2},
    )
    cells = result.notebook["cells"]
    describe, top, end = result.inserted
    assert [c["id"] for c in cells] == [top, "load", describe, "fit", end]
    assert cells[0]["cell_type"] == "markdown" and cells[0]["source"] == "Top"
    assert cells[2] == {
        "id": describe,
        "cell_type": "code",
        "metadata": {"agcluster": {"session": "s1", "turn": 2}},
        "source": "df.describe()",
        "outputs": [],
        "execution_count": None,
    }
    # a replaced code cell keeps its id and the user's metadata; its old outputs go
    fit = cells[3]
    assert fit["source"] == "model.fit(df, y)" and fit["outputs"] == []
    assert fit["metadata"] == {"tags": ["keep"], "agcluster": {"session": "s1", "turn": 2}}
    assert (result.replaced, result.deleted) == (["fit"], ["intro"])
    # the user's cell the agent did not touch is as it was, and the input is unchanged
    assert cells[1] == NB["cells"][1]
    assert [c["id"] for c in NB["cells"]] == ["intro", "load", "fit"]
    # a notebook the agent wrote in is never signed (it reopens untrusted)
    assert holds_agent_output(result.notebook) and not holds_agent_output(NB)


def test_a_replace_may_change_the_cell_type() -> None:
    result = apply_edits(
        NB, [{"op": "replace", "cell_id": "load", "source": "Text", "cell_type": "markdown"}]
    )
    cell = result.notebook["cells"][1]
    assert cell["cell_type"] == "markdown" and "outputs" not in cell and cell["id"] == "load"


def test_an_old_notebook_without_ids_gets_index_ids_and_then_real_ones() -> None:
    old = _nb(
        {
            "cell_type": "code",
            "metadata": {},
            "source": "1",
            "outputs": [],
            "execution_count": None,
        },
        {"cell_type": "markdown", "metadata": {}, "source": "two"},
        minor=4,
    )
    assert cell_ids(old) == ["cell-0", "cell-1"]
    result = apply_edits(old, [{"op": "replace", "cell_id": "cell-1", "source": "2"}])
    assert [c["id"] for c in result.notebook["cells"]] == ["cell-0", "cell-1"]
    assert result.notebook["nbformat_minor"] == 5


BAD_EDITS: list[tuple[Any, str]] = [
    ([], "non-empty list"),
    ("insert", "non-empty list"),
    ([{"op": "insert", "source": "x"}] * (MAX_EDITS + 1), f"at most {MAX_EDITS}"),
    ([{"op": "move", "cell_id": "fit"}], "op must be insert, replace or delete"),
    ([{"cell_id": "fit"}], "op must be"),
    (["delete fit"], "must be an object"),
    ([{"op": "delete", "cell_id": "nope"}], "no cell has id 'nope'"),
    ([{"op": "delete"}], "cell_id is required"),
    ([{"op": "replace", "cell_id": "fit"}], "source is required"),
    ([{"op": "insert"}], "source is required"),
    ([{"op": "insert", "source": 3}], "source must be a string"),
    ([{"op": "insert", "source": "x", "cell_type": "html"}], "cell_type must be one of"),
    ([{"op": "insert", "source": "x", "after_cell_id": "ghost"}], "no cell has id 'ghost'"),
    ([{"op": "insert", "source": "x", "outputs": []}], "unknown field 'outputs'"),
    ([{"op": "insert", "source": "x" * (MAX_SOURCE_CHARS + 1)}], "at most"),
    ([{"op": "insert", "source": "a\x00b"}], "NUL"),
    # the second edit fails: the first is not applied either
    ([{"op": "delete", "cell_id": "fit"}, {"op": "delete", "cell_id": "fit"}], "'fit'"),
]


@pytest.mark.parametrize(("edits", "says"), BAD_EDITS)
def test_a_bad_edit_list_is_refused_whole_with_a_message(edits: Any, says: str) -> None:
    before = copy.deepcopy(NB)
    with pytest.raises(EditError) as info:
        apply_edits(NB, edits)
    assert says in str(info.value)
    assert NB == before


def test_changed_under_names_the_cell_an_edit_needs_that_changed() -> None:
    def nb(*sources: str) -> dict[str, Any]:
        return {
            "cells": [
                {"id": f"c{i}", "cell_type": "code", "source": s} for i, s in enumerate(sources)
            ]
        }

    then, now = nb("a", "b", "c"), nb("a typed", "b", "c")
    # the edit names cells the user left alone: it applies to now
    assert changed_under([{"op": "replace", "cell_id": "c1", "source": "x"}], then, now) is None
    assert changed_under([{"op": "insert", "after_cell_id": "c2", "source": ""}], then, now) is None
    assert changed_under([{"op": "insert", "source": "x"}], then, now) is None
    # ...or one the user changed, deleted, or turned into markdown
    assert changed_under([{"op": "delete", "cell_id": "c0"}], then, now) == "c0"
    assert changed_under([{"op": "insert", "after_cell_id": "c0", "source": ""}], then, now) == "c0"
    gone = {"cells": now["cells"][1:]}
    assert changed_under([{"op": "replace", "cell_id": "c0", "source": ""}], then, gone) == "c0"
    retyped = nb("a", "b", "c")
    retyped["cells"][2]["cell_type"] = "markdown"
    assert changed_under([{"op": "delete", "cell_id": "c2"}], then, retyped) == "c2"
    # edits it cannot read: not for it to judge
    assert changed_under("nonsense", then, now) == "order"
    assert changed_under([1], then, now) == "order"
