"""Agent content rendered as untrusted: every payload comes out inert and still readable,
in every Python surface (Markdown, the notebook widget, the workspace browser, a cell's
outputs, the snapshot, the exported notebook through nbconvert, mistune and markdown-it),
and a notebook holding agent output is never signed."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import mistune
import nbformat
import pytest
from markdown_it import MarkdownIt
from nbconvert import HTMLExporter
from nbformat.sign import NotebookNotary

from agcluster_jupyter.events import Event, parse_event
from agcluster_jupyter.export import to_notebook
from agcluster_jupyter.kernel.widgets import AgentWidget
from agcluster_jupyter.kernel.widgets.browser import WorkspaceBrowser
from agcluster_jupyter.signing import holds_agent_output, never_sign_agent_output
from agcluster_jupyter.testing.xss import (
    EXFIL_HOST,
    PAYLOADS,
    inert_html_problems,
    marker,
    payload_text,
    payloads_json,
)
from agcluster_jupyter.untrusted import (
    html_output,
    image_html,
    markdown_html,
    safe_href,
    text_html,
)

SID = "0123456789abcdef"
SVG_WITH_SCRIPT = (
    b'<svg xmlns="http://www.w3.org/2000/svg" onload="window.__agcPwned=1">'
    b"<script>window.__agcPwned=2</script><circle r='4'/></svg>"
)


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def shown_text(fragment: str) -> str:
    """The text a browser shows for ``fragment`` (tags dropped, entities decoded)."""
    parser = _Text()
    parser.feed(fragment)
    parser.close()
    return "".join(parser.parts)


def assert_inert_and_readable(fragment: str, names: list[str], **kwargs: Any) -> None:
    assert inert_html_problems(fragment, **kwargs) == []
    text = shown_text(fragment)
    for name in names:
        assert marker(name) in text, f"{name}: its marker is not shown as text"


# -- the sanitizer -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_each_payload_is_inert_and_shown_as_text(name: str) -> None:
    rendered = markdown_html(payload_text([name]))
    assert_inert_and_readable(rendered, [name])
    if PAYLOADS[name].startswith("<"):
        # raw HTML in agent text shows as the text it is, not as markup
        assert PAYLOADS[name].split(" ")[0] in shown_text(rendered)


def test_markdown_keeps_its_formatting() -> None:
    rendered = markdown_html(
        "# Title\n\n**bold** *it* ~~gone~~ `x < y`\n\n- a\n- b\n\n"
        "```python\nif a < b:\n    pass\n```\n\n| n | v |\n|---|--:|\n| a | 1 |\n\n"
        "> quoted\n\n[docs](https://example.org/a?b=1) and <https://example.org/auto>"
    )
    assert "<h1>Title</h1>" in rendered
    assert "<strong>bold</strong> <em>it</em> <s>gone</s> <code>x &lt; y</code>" in rendered
    assert (
        "<li>a</li>" in rendered and "<pre><code>if a &lt; b:\n    pass\n</code></pre>" in rendered
    )
    assert '<td style="text-align:right">1</td>' in rendered
    assert "<blockquote>" in rendered
    link = '<a href="https://example.org/a?b=1" target="_blank" rel="noopener noreferrer">docs</a>'
    assert link in rendered
    assert 'href="https://example.org/auto"' in rendered
    assert inert_html_problems(rendered) == []


def test_links_keep_http_targets_only_and_images_never_load() -> None:
    rendered = markdown_html(
        "[a](javascript:alert(1)) [b](JaVaScRiPt:alert(1)) [c](jav&#x61;script:x) "
        "[d](data:text/html,x) [e](/api/contents) [f](vbscript:x) [g](file:///etc/passwd) "
        f"![remote](https://{EXFIL_HOST}/t.png) ![inline](data:image/png;base64,AAAA)"
    )
    assert inert_html_problems(rendered) == []
    hrefs = re.findall(r'href="([^"]*)"', rendered)
    assert hrefs == [f"https://{EXFIL_HOST}/t.png"]  # the remote image, as a link to click
    assert "<img" not in rendered and "[image: remote]" in rendered
    assert "[a](javascript:alert(1))" in shown_text(rendered)
    assert [safe_href(u) for u in ("https://x.org", " http://x.org/a ", "https:x", "//x.org")] == [
        "https://x.org",
        "http://x.org/a",
        None,
        None,
    ]


def test_text_and_images() -> None:
    assert text_html("<b>x</b>", limit=3) == "<pre>&lt;b&gt;\n… (5 more characters)</pre>"
    svg = image_html(SVG_WITH_SCRIPT, "image/svg+xml", 'a"b.svg')
    assert svg.startswith('<img src="data:image/svg+xml;base64,') and 'alt="a&quot;b.svg"' in svg
    assert "<svg" not in svg and "script" not in svg
    assert inert_html_problems(svg, allow_data_images=True) == []
    with pytest.raises(ValueError, match="text/html"):
        image_html(b"<script>", "text/html", "x.html")
    output = html_output("<p>x</p>", "x", {"path": "p"})
    assert output["data"] == {"text/html": "<p>x</p>", "text/plain": "x"}
    assert output["metadata"] == {"agcluster": {"path": "p"}}


def test_the_panel_fixture_matches_the_payloads() -> None:
    fixture = Path(__file__).parents[2] / "labextension/test/fixtures/xss.json"
    assert fixture.read_text() == payloads_json(), (
        "regenerate it: python -c 'from agcluster_jupyter.testing.xss import payloads_json; "
        'print(payloads_json(), end="")\' > labextension/test/fixtures/xss.json'
    )


# -- the notebook widget -----------------------------------------------------------------------


def _events(*specs: dict[str, Any]) -> list[Event]:
    return [
        parse_event({"seq": i, "session_id": SID, "ts": f"2026-12-03T10:00:{i:02d}+00:00", **s})
        for i, s in enumerate(specs, start=1)
    ]


def _widget_html(widget: AgentWidget) -> list[str]:
    """Every piece of HTML the widget puts into the page."""
    pieces = [widget.header.value, widget.notice.value, widget.tasks.value]
    pieces += [output["data"]["text/html"] for output in widget.chat.outputs]
    pieces += [row.line.value for row in widget._rows.values()]
    for row in widget.permission_box.children:
        pieces += [child.value for child in row.children if hasattr(child, "value")]
    pieces.append(widget.mimebundle()[0]["text/html"])
    return pieces


_STATUSES = ["completed", "in_progress", "pending"]


def test_widget_surfaces_are_inert_and_readable() -> None:
    names = list(PAYLOADS)
    text = payload_text()
    widget = AgentWidget(None, SID, title=f"{marker('title')} {PAYLOADS['img-onerror']}")
    widget.extend(
        _events(
            {"type": "status", "state": "busy"},
            {"type": "message", "role": "user", "text": text},
            {"type": "thinking", "text": text},
            {"type": "text_delta", "text": text},
            {"type": "message", "role": "assistant", "text": text},
            {"type": "tool_use", "tool_use_id": "t1", "name": PAYLOADS["script"],
             "input": {"command": text}},
            {"type": "permission_request", "request_id": "t2", "tool_name": PAYLOADS["svg-onload"],
             "input": {"command": text}},
            {"type": "permission_request", "request_id": "srv_k", "tool_name":
             "mcp__jupyter__run_code", "input": {"notebook": PAYLOADS["script"], "code": text}},
            {"type": "tool_result", "tool_use_id": "t1", "is_error": True, "output": text},
            {"type": "todo_update", "todos": [
                {"content": f"{marker(n)} {p}", "status": s, "activeForm": f"{marker(n)} {p}"}
                for (n, p), s in zip(PAYLOADS.items(), _STATUSES * 9, strict=False)
            ]},
            {"type": "error", "message": text, "code": "x<img src=x onerror=alert(1)>"},
        )
    )  # fmt: skip
    widget.flush()
    pieces = _widget_html(widget)
    for piece in pieces:
        assert inert_html_problems(piece) == [], piece[:300]
    everything = "\n".join(shown_text(p) for p in pieces)
    for name in [*names, "title"]:
        assert marker(name) in everything
    # each surface on its own: the chat's reply, the call's input and output, the tasks
    reply = widget.chat.outputs[1]["data"]["text/html"]
    assert_inert_and_readable(reply, names)
    assert_inert_and_readable(widget._rows["t1"].line.value, names)
    assert_inert_and_readable(widget.tasks.value, names[:3])
    assert_inert_and_readable(widget.chat.outputs[-1]["data"]["text/html"], names)
    # a run in the user's kernel: all of its code (no summary), and its notebook, as text
    (run,) = [r for r in widget.permission_box.children if r.request_id == "srv_k"]
    card = run.children[0].value
    assert_inert_and_readable(card, names)
    assert "<pre" in card and html.escape(PAYLOADS["script"]) in card


class _FakeFiles:
    """The two calls a workspace preview makes, answering with hostile content."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files

    def read_bytes(self, session_id: str, path: str) -> bytes:
        return self.files[path]

    def preview(self, session_id: str, path: str) -> dict[str, Any]:
        return {"path": path, "content": self.files[path].decode(), "language": "html"}


def test_workspace_browser_previews_are_inert() -> None:
    name = f"{marker('file-name')} {PAYLOADS['img-onerror']}.html"
    files = {name: payload_text().encode(), "chart.svg": SVG_WITH_SCRIPT}
    browser = WorkspaceBrowser(_FakeFiles(files), SID)  # type: ignore[arg-type]
    browser.show(name)
    assert_inert_and_readable(browser.preview.value, [*PAYLOADS, "file-name"])
    browser.show("chart.svg")
    assert browser.preview.value.startswith('<img src="data:image/svg+xml;base64,')
    assert inert_html_problems(browser.preview.value, allow_data_images=True) == []


# -- exported notebook: JupyterLab (any trust), nbconvert, GitHub-like parsers --------------


def _hostile_conversation() -> list[Event]:
    text = payload_text()
    return _events(
        {"type": "message", "role": "user", "text": text},
        {"type": "thinking", "text": text},
        {"type": "message", "role": "assistant", "text": text},
        {"type": "tool_use", "tool_use_id": "w", "name": "Write",
         "input": {"file_path": f"/workspace/{PAYLOADS['img-onerror']}", "content": text}},
        {"type": "tool_result", "tool_use_id": "w", "is_error": True, "output": text},
        {"type": "tool_use", "tool_use_id": "b", "name": "Bash", "input": {"command": text}},
        {"type": "tool_result", "tool_use_id": "b", "output": text},
        {"type": "error", "message": text, "code": "api_error"},
    )  # fmt: skip


def test_exported_notebook_renders_inert_in_every_markdown_parser() -> None:
    nb = to_notebook(_hostile_conversation(), f"{marker('title')} {PAYLOADS['script']}")
    nbformat.validate(nbformat.from_dict(nb))
    assert "signature" not in nb["metadata"]
    markdown = [c for c in nb["cells"] if c["cell_type"] == "markdown"]
    # mistune (nbconvert's parser, raw HTML passed through) and markdown-it with HTML on
    # (CommonMark, what GitHub and JupyterLab's marked follow) see only our sanitized HTML
    parsers: dict[str, Callable[[str], object]] = {
        "mistune": mistune.create_markdown(escape=False, plugins=["table", "strikethrough"]),
        "markdown-it": MarkdownIt("commonmark", {"html": True}).enable("table").render,
    }
    for cell in markdown:
        source = "".join(cell["source"])
        for parser_name, render in parsers.items():
            rendered = str(render(source))
            assert inert_html_problems(rendered) == [], (parser_name, source[:200])
    shown = "".join(shown_text(str(parsers["mistune"]("".join(c["source"])))) for c in markdown)
    for name in PAYLOADS:
        assert marker(name) in shown
    assert marker("title") in shown


def test_exported_notebook_through_nbconvert_html() -> None:
    nb = nbformat.reads(json.dumps(to_notebook(_hostile_conversation(), "t")), as_version=4)
    # the basic template is the cells alone: all of it must be inert (the full page adds
    # nbconvert's own scripts; tests/browser opens that one in Chromium)
    body, _ = HTMLExporter(template_name="basic").from_notebook_node(nb)
    assert_inert_and_readable(body, list(PAYLOADS))
    assert html.escape(PAYLOADS["script"], quote=False) in body  # the Bash output, as text


def test_a_saved_snapshot_renders_inert_through_nbconvert() -> None:
    widget = AgentWidget(None, SID, title="t")
    widget.extend(_events({"type": "message", "role": "assistant", "text": payload_text()}))
    data, metadata = widget.mimebundle()
    data.pop("application/vnd.jupyter.widget-view+json")  # saved without its widget state
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell("%%agent\nhi"))
    nb.cells[0].outputs.append(nbformat.v4.new_output("display_data", data, metadata=metadata))
    body, _ = HTMLExporter(template_name="basic").from_notebook_node(nb)
    assert_inert_and_readable(body, list(PAYLOADS))


# -- signatures ----------------------------------------------------------------------------


def _trusted_notebook(output_metadata: dict[str, Any], source: str = "x = 1") -> Any:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(source)
    cell.outputs.append(
        nbformat.v4.new_output("display_data", {"text/html": "<b>hi</b>"}, metadata=output_metadata)
    )
    cell.metadata["trusted"] = True  # what JupyterLab sends for outputs of this session
    nb.cells.append(cell)
    return nb


def test_which_notebooks_hold_agent_output() -> None:
    assert holds_agent_output(_trusted_notebook({"agcluster": {}}))
    assert holds_agent_output(_trusted_notebook({}, source="%%agent\nhello"))
    assert holds_agent_output(to_notebook([], "t"))
    assert not holds_agent_output(_trusted_notebook({}))
    assert not holds_agent_output(_trusted_notebook({}, source="print('%%agent')"))


def test_the_contents_manager_never_signs_agent_output(tmp_path: Path) -> None:
    from jupyter_server.services.contents.filemanager import FileContentsManager

    manager = FileContentsManager(root_dir=str(tmp_path))
    manager.notary = NotebookNotary(db_file=":memory:", secret=b"s" * 32)
    assert never_sign_agent_output(manager) and never_sign_agent_output(manager)  # once
    for name, nb in {
        "mine.ipynb": _trusted_notebook({}),
        "agent.ipynb": _trusted_notebook({"agcluster": {"session_id": SID}}),
        "export.ipynb": nbformat.from_dict(to_notebook([], "t")),
    }.items():
        # as JupyterLab sends it: cells of this session's outputs carry metadata.trusted
        manager.save({"type": "notebook", "content": json.loads(json.dumps(nb))}, name)

    def signed(name: str) -> bool:
        return bool(manager.notary.check_signature(nbformat.read(tmp_path / name, as_version=4)))

    assert signed("mine.ipynb")  # the user's own notebook: trusted, as Jupyter does
    assert not signed("agent.ipynb") and not signed("export.ipynb")


# -- a %%agent cell's own outputs --------------------------------------------------------------


def test_a_cells_streamed_text_and_images_are_inert(monkeypatch: pytest.MonkeyPatch) -> None:
    from agcluster_jupyter.kernel import turn_output

    shown: list[tuple[dict[str, Any], dict[str, Any]]] = []

    class Handle:
        def update(self, data: dict[str, Any], metadata: dict[str, Any], raw: bool) -> None:
            shown.append((data, metadata))

    def display(data: dict[str, Any], metadata: dict[str, Any], raw: bool, **kw: Any) -> Handle:
        assert raw
        shown.append((data, metadata))
        return Handle()

    monkeypatch.setattr(turn_output, "display", display)
    renderer = turn_output.TurnRenderer(rich=True, quiet=False)
    for event in _events(
        {"type": "text_delta", "text": payload_text()},
        {"type": "tool_use", "tool_use_id": "t", "name": "Bash", "input": {"command": TEXT_CMD}},
        {"type": "error", "message": payload_text(), "code": "api_error"},
    ):
        renderer.event(event)
    renderer.close()
    turn_output.show_image("chart.svg", SVG_WITH_SCRIPT)
    turn_output.show_image("notes.txt", b"<script>")  # not an image: not shown
    *streamed, image = shown
    for data, metadata in streamed:
        assert set(data) == {"text/html", "text/plain"} and "agcluster" in metadata
        assert inert_html_problems(data["text/html"]) == []
    assert_inert_and_readable(streamed[-1][0]["text/html"], list(PAYLOADS))
    assert image[1] == {"agcluster": {"path": "chart.svg"}}
    assert image[0]["text/html"].startswith('<img src="data:image/svg+xml;base64,')


TEXT_CMD = "echo '<img src=x onerror=alert(1)>' `<b>` ``"
