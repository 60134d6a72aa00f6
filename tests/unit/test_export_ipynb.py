"""The notebook export from event sequences: valid nbformat v4, text as Markdown, Bash as
code cells with their outputs."""

from __future__ import annotations

from typing import Any

import nbformat

from agcluster_jupyter.events import (
    DoneEvent,
    ErrorEvent,
    Event,
    KernelCallEvent,
    MessageEvent,
    ResultEvent,
    TextDeltaEvent,
    ThinkingEvent,
    ToolResultEvent,
    ToolUseEvent,
)
from agcluster_jupyter.export import EXPORT_FORMATS, to_markdown, to_notebook
from agcluster_jupyter.untrusted import markdown_cell_source


def _source(cell: dict[str, Any]) -> str:
    return "".join(cell["source"])


def _html(markdown: str) -> str:
    """What a Markdown cell holds for the agent's ``markdown``: its sanitized HTML."""
    return markdown_cell_source(markdown)


def _valid(nb: dict[str, Any]) -> dict[str, Any]:
    nbformat.validate(nbformat.from_dict(nb))
    return nb


def test_ipynb_is_an_export_format() -> None:
    assert "ipynb" in EXPORT_FORMATS


def test_empty_conversation_is_a_titled_notebook() -> None:
    nb = _valid(to_notebook([], "My agent"))
    assert nb["nbformat"] == 4
    assert [c["cell_type"] for c in nb["cells"]] == ["markdown"]
    title = _source(nb["cells"][0])
    assert title.startswith("<h1>My agent</h1>\n")
    assert "running them here runs them on this machine, outside the container" in title
    assert nb["metadata"]["agcluster"] == {"title": "My agent"}  # never signed


def test_text_bash_and_other_tools() -> None:
    events: list[Event] = [
        MessageEvent(role="user", text="Please analyse some data"),
        ThinkingEvent(text="plan it"),
        TextDeltaEvent(text="I'll "),
        MessageEvent(text="I'll write a script."),
        ToolUseEvent(
            tool_use_id="w1", name="Write", input={"file_path": "/ws/a.py", "content": "x"}
        ),
        ToolResultEvent(tool_use_id="w1", output="File created"),
        ToolUseEvent(tool_use_id="b1", name="Bash", input={"command": "python3 a.py"}),
        ToolResultEvent(tool_use_id="b1", output="mean: 21.5 C\nwarmest: Sat"),
        ToolUseEvent(tool_use_id="b2", name="Bash", input={"command": "false"}),
        ToolResultEvent(tool_use_id="b2", is_error=True, output="Exit code 1"),
        ToolUseEvent(tool_use_id="g1", name="Grep", input={"pattern": "mean"}),
        ToolResultEvent(tool_use_id="g1", is_error=True, output="no such file\nmore"),
        MessageEvent(text="Done."),
        ResultEvent(cost_usd=0.0123, duration_ms=1500),
        DoneEvent(),
    ]
    nb = _valid(to_notebook(events, "t"))
    cells = nb["cells"]
    kinds = [c["cell_type"] for c in cells]
    assert kinds == [
        "markdown",  # title
        "markdown",  # user
        "markdown",  # assistant
        "markdown",  # Write
        "code",
        "code",
        "markdown",  # Grep and its error
        "markdown",  # Done.
        "markdown",  # turn footer
    ]
    assert _source(cells[1]) == "<p><strong>User:</strong></p>\n<p>Please analyse some data</p>\n"
    assert _source(cells[2]) == _html("**Assistant:**\n\nI'll write a script.")
    assert (
        _source(cells[3]) == "<ul>\n<li><strong>Write</strong> <code>/ws/a.py</code></li>\n</ul>\n"
    )
    ok, failed = cells[4], cells[5]
    assert _source(ok) == "%%bash\npython3 a.py"
    assert ok["outputs"] == [
        {"output_type": "stream", "name": "stdout", "text": ["mean: 21.5 C\n", "warmest: Sat\n"]}
    ]
    assert failed["outputs"][0]["name"] == "stderr"
    assert "".join(failed["outputs"][0]["text"]) == "Exit code 1\n"
    assert _source(cells[6]) == _html("- **Grep** `mean`\n  - error: no such file")
    assert "Turn finished in 1.5 s, cost $0.0123" in _source(cells[8])
    assert all("plan it" not in _source(c) and c["cell_type"] != "raw" for c in cells)
    assert len({c["id"] for c in cells}) == len(cells)


def test_result_before_use_and_missing_results_stay_valid() -> None:
    events: list[Event] = [
        ToolResultEvent(tool_use_id="orphan", output="?"),
        ToolUseEvent(tool_use_id="b1", name="Bash", input={"command": "sleep 100"}),
        ErrorEvent(message="interrupted", code="interrupted"),
        ToolResultEvent(tool_use_id="b1", output=""),
    ]
    nb = _valid(to_notebook(events, "t"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert len(code) == 1 and code[0]["outputs"] == []
    assert any("interrupted" in _source(c) for c in nb["cells"])


def test_sub_agent_text_and_odd_inputs() -> None:
    long_input = {"items": list(range(200))}
    events: list[Event] = [
        MessageEvent(text="inner", parent_tool_use_id="t1"),
        ToolUseEvent(tool_use_id="x", name="Odd", input=long_input),
        ToolUseEvent(tool_use_id="y", name="Read", input={"file_path": "a`b`"}),
        ToolUseEvent(tool_use_id="z", name="Bash", input={"command": 3}),
    ]
    nb = _valid(to_notebook(events, "t"))
    texts = [_source(c) for c in nb["cells"]]
    assert texts[1] == _html("**Assistant (sub-agent):**\n\ninner")
    odd, read, bash = texts[2].split("\n")[1:4]
    assert odd.startswith("<li><strong>Odd</strong> <code>{") and odd.endswith("…</code></li>")
    assert len(odd) < 250
    assert read == "<li><strong>Read</strong> <code>a`b`</code></li>"
    assert bash.startswith("<li><strong>Bash</strong>")  # not a command: no code cell


def test_what_ran_in_the_users_kernel_is_in_both_exports() -> None:
    events: list[Event] = [
        KernelCallEvent(
            notebook="fit.ipynb",
            kernel_id="k-1",
            tool="inspect_variable",
            approved_by="inspection",
            duration_ms=12,
            outcome="ok",
        ),
        KernelCallEvent(
            notebook="fit.ipynb",
            kernel_id="k-1",
            tool="run_code",
            code="model.fit(X, y)\nprint('```')",
            approved_by="alice",
            duration_ms=1500,
            outcome="ok",
        ),
        KernelCallEvent(
            notebook="fit.ipynb", kernel_id="k-1", tool="run_code", code="del df", outcome="denied"
        ),
    ]
    markdown = to_markdown(events, "audit")
    assert "**In the kernel of `fit.ipynb`** (kernel `k-1`): `inspect_variable`" in markdown
    assert "`run_code`, approved by alice, ok in 1.5 s" in markdown
    assert "````python\nmodel.fit(X, y)\nprint('```')\n````" in markdown
    assert "`run_code`, denied in 0.0 s\n\n```python\ndel df\n```" in markdown
    nb = _valid(to_notebook(events, "audit"))
    # shown, never runnable: no code cell holds the kernel's code
    assert [c["cell_type"] for c in nb["cells"]] == ["markdown"] * 4
    assert "model.fit(X, y)" in _source(nb["cells"][2])
    assert "del df" in _source(nb["cells"][3]) and "denied" in _source(nb["cells"][3])
