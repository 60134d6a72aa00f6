"""Agent content can run no script in the user's Jupyter page: the content security check.

A real session (local provider, the real claude CLI, the scripted model) sends the XSS
payloads of :mod:`agcluster_jupyter.testing.xss` through every surface: the assistant's
text and thinking, a tool's input and output, a file name, a file's content, an SVG image
with ``<script>`` and ``onload``, task names and an error message.  They are shown

- in the Agents panel (chat, tools, tasks, files opened in JupyterLab, the export opened
  in JupyterLab, trusted and not),
- in a notebook's ``%%agent`` cells in JupyterLab (the live widget: chat, tools, tasks,
  files and their previews; the SVG as a cell output), then saved, reopened in JupyterLab
  and in Notebook 7,
- and as nbconvert HTML of that notebook and of the export.

For each: no payload ran (``window.__agcPwned`` stays unset, no request left for the
payloads' host, no element that could act), and every payload's marker is still shown
to the user as text.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat.sign import NotebookNotary

from agcluster_jupyter.testing.server import ScriptedModelServer
from agcluster_jupyter.testing.xss import EXFIL_HOST, PAYLOADS, PWNED_FLAG, marker, payload_text

from .agents_panel import AgentsPanel, expect
from .conftest import Lab

pytestmark = pytest.mark.browser

TEXT = payload_text()
NAMES = list(PAYLOADS)
SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="120" height="40" '
    f"onload=\"(window.{PWNED_FLAG}=window.{PWNED_FLAG}||[]).push('svg-file-onload')\">"
    f"<script>(window.{PWNED_FLAG}=window.{PWNED_FLAG}||[]).push('svg-file-script')</script>"
    '<rect width="120" height="40" fill="#4a90d9"/></svg>\n'
)
#: a workspace file whose very name is a payload
FILE_NAME = f"{marker('file-name')} {PAYLOADS['img-onerror']}.html"
#: task names, a few payloads each (one line)
TASKS = [" ".join(f"{marker(n)} {PAYLOADS[n]}" for n in NAMES[i::3]) for i in range(3)]
HOSTILE_PROMPT = "show me hostile content"
#: the agent content of an open notebook: its Markdown cells' rendering and its outputs
CELLS = ".jp-NotebookPanel:visible .jp-MarkdownOutput, .jp-NotebookPanel:visible .jp-OutputArea"
ERROR_PROMPT = "fail with a hostile error"

#: what a page's agent content must not contain, as one script run in the page
PROBLEMS_JS = """(root) => {
  const found = [];
  // (form controls are left to the attribute checks: a bare <button> does nothing)
  const active = 'script, iframe, frame, object, embed, svg, math, link, meta, base, form, '
    + 'video, audio, source, picture';
  for (const el of root.querySelectorAll(active)) {
    if (el.closest('[data-icon], .jp-icon3, .jp-ToolbarButton, .lm-TabBar')) continue;
    found.push('<' + el.tagName.toLowerCase() + '> ' + el.outerHTML.slice(0, 120));
  }
  for (const el of root.querySelectorAll('*')) {
    for (const attr of el.attributes) {
      const name = attr.name.toLowerCase();
      const value = attr.value.replace(/[\\s\\u0000-\\u001f]/g, '').toLowerCase();
      if (name.startsWith('on')) found.push(name + ' on <' + el.tagName.toLowerCase() + '>');
      if (name === 'data-commandlinker-command' && value === 'help:about')
        found.push('a command-linker element');
      if (name === 'srcdoc') found.push('srcdoc');
      if (['href', 'src', 'action', 'formaction', 'xlink:href'].includes(name)
          && value.startsWith('javascript:')) found.push(name + '=' + attr.value);
    }
  }
  for (const img of root.querySelectorAll('img')) {
    const src = img.getAttribute('src') || '';
    if (!src.startsWith('data:image/') && !src.startsWith('blob:')) found.push('img ' + src);
  }
  return found;
}"""


def _write(path: str, content: str) -> dict[str, Any]:
    return {"tool_use": {"name": "Write", "input": {"file_path": path, "content": content}}}


def _task(subject: str) -> dict[str, Any]:
    return {
        "tool_use": {
            "name": "TaskCreate",
            "optional": True,
            "input": {"subject": subject, "description": subject, "activeForm": subject},
        }
    }


@pytest.fixture(scope="module", autouse=True)
def scenarios(lab_model: ScriptedModelServer) -> None:
    lab_model.add_scenarios(
        [
            {
                "match": HOSTILE_PROMPT,
                "steps": [
                    [
                        {"thinking": TEXT},
                        {"text": f"Here is what I found.\n\n{TEXT}"},
                        _write("{cwd}/evil.html", TEXT),
                        _write("{cwd}/" + FILE_NAME, TEXT),
                        _write("{cwd}/chart.svg", SVG),
                        *(_task(subject) for subject in TASKS),
                    ],
                    [
                        {
                            "tool_use": {
                                "name": "Bash",
                                "input": {"command": "cat evil.html", "description": TEXT},
                            }
                        }
                    ],
                ],
                "final": f"All done.\n\n{TEXT}",
            },
            {"match": ERROR_PROMPT, "steps": [[{"error": 400, "message": TEXT}]]},
        ]
    )


class Watch:
    """What a page did that a payload would have made it do."""

    def __init__(self, lab: Lab) -> None:
        self.page = lab.page
        self.exfil: list[str] = []
        self.page.on("request", self._request)
        self.page.context.on("page", lambda p: p.on("request", self._request))

    def _request(self, request: Any) -> None:
        if EXFIL_HOST in request.url:
            self.exfil.append(request.url)

    def pwned(self, page: Any = None) -> Any:
        return (page or self.page).evaluate(f"() => window.{PWNED_FLAG} ?? null")

    def assert_clean(
        self, page: Any = None, root: str | None = None, where: str = "", loads: bool = False
    ) -> None:
        """No payload ran; with ``loads`` False, nothing was fetched from their host; no
        element under ``root`` (agent content, not JupyterLab's own page) could act."""
        page = page or self.page
        page.wait_for_timeout(300)  # an onerror/onload fires within a frame or two
        assert self.pwned(page) is None, f"{where}: a payload ran: {self.pwned(page)}"
        if not loads:
            assert self.exfil == [], f"{where}: requests to {EXFIL_HOST}: {self.exfil}"
        if root is not None:
            for container in page.locator(root).all():
                problems = container.evaluate(PROBLEMS_JS)
                assert problems == [], f"{where}: active content in the page: {problems}"

    @staticmethod
    def assert_readable(locator: Any, names: list[str], where: str) -> None:
        text = locator.inner_text()
        missing = [n for n in names if marker(n) not in text]
        assert not missing, f"{where}: markers not shown as text: {missing}"


@pytest.fixture
def watch(lab: Lab) -> Watch:
    return Watch(lab)


def _converted(lab: Lab, notebook: Path, out: Path) -> Path:
    """``jupyter nbconvert --to html`` (the lab template, as users run it)."""
    subprocess.run(
        [sys.executable, "-m", "jupyter", "nbconvert", "--to", "html", "--output",
         out.stem, "--output-dir", str(out.parent), str(notebook)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return out


def _check_nbconvert_html(lab: Lab, watch: Watch, html_file: Path, names: list[str]) -> None:
    page = lab.page.context.new_page()
    try:
        page.goto(html_file.as_uri())
        page.wait_for_load_state("load")
        watch.assert_clean(page, root=".jp-Cell", where=f"nbconvert {html_file.name}")
        Watch.assert_readable(page.locator("body"), names, f"nbconvert {html_file.name}")
    finally:
        page.close()


# -- the panel -----------------------------------------------------------------------------


@pytest.fixture
def panel(lab: Lab) -> Iterator[AgentsPanel]:
    panel = AgentsPanel(lab)
    panel.open()
    yield panel


def test_the_panel_shows_agent_content_as_text(
    lab: Lab, panel: AgentsPanel, watch: Watch, tmp_path: Path
) -> None:
    panel.launch("code-assistant")
    panel.send(HOSTILE_PROMPT)
    panel.assistant_says("All done.")
    panel.wait_idle()
    root = f"#{panel.root.get_attribute('id')}"
    watch.assert_clean(root=root, where="panel chat")
    replies = panel.tid("message-assistant")
    Watch.assert_readable(replies.first, NAMES, "the reply")
    Watch.assert_readable(replies.last, NAMES, "the final reply")

    # a tool's input and output
    for row in panel.tid("tool-call-row").all():
        row.click()
    bash = panel.tool_call("Bash").get_by_test_id("tool-call-detail")
    Watch.assert_readable(bash, NAMES, "the Bash call's input and output")
    write = panel.tool_call("Write").first.get_by_test_id("tool-call-detail")
    Watch.assert_readable(write, NAMES, "the Write call's input")
    expect(panel.tid("task-item")).to_have_count(3)
    Watch.assert_readable(panel.tid("task-list"), NAMES, "the tasks")
    watch.assert_clean(root=root, where="panel tools and tasks")

    # an error message
    panel.send(ERROR_PROMPT)
    error = panel.tid("message-error").last
    expect(error).to_contain_text(marker(NAMES[-1]), timeout=60_000)
    panel.wait_idle()
    Watch.assert_readable(error, NAMES, "the error")
    assert PAYLOADS["img-onerror"] in error.inner_text()  # shown as the text it is
    watch.assert_clean(root=root, where="panel error")

    # files: their names, and each opened in JupyterLab (HTML viewer, image viewer)
    panel.tid("tab-files").click()
    entry = panel.tid("file-entry").filter(has_text=marker("file-name"))
    expect(entry).to_be_visible()
    assert entry.get_attribute("data-path") == FILE_NAME  # the name, as text
    for path, opens in ((FILE_NAME, entry), ("evil.html", None), ("chart.svg", None)):
        (opens or panel.file_entry(path)).click()
        tab = lab.page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text=path[-20:])
        expect(tab.first).to_be_visible()
        lab.page.wait_for_timeout(800)  # the viewer's iframe or image loads
        # JupyterLab's own HTML viewer runs no script of an untrusted file, but it does
        # load the file's remote images (README: "What is rendered how")
        watch.assert_clean(where=f"{path} opened in JupyterLab", loads=True)
    watch.exfil.clear()
    # the viewers' sandbox refused the files' script: the console says so (expected)
    blocked = lab.take_errors(r"Blocked (script execution|autofocusing)")
    assert blocked, "JupyterLab's HTML viewer should have refused the file's script"
    lab.take_errors(rf"{EXFIL_HOST}|/files/agent-workspaces/.*/x\b")  # its <img>s failing
    watch.assert_clean(root=root, where="panel files")

    # the export, opened in JupyterLab: untrusted, then trusted by the user
    panel.tid("session-export").click()
    notebook = lab.page.locator(".jp-NotebookPanel:visible")
    expect(notebook.locator(".jp-MarkdownCell").first).to_be_visible()
    expect(notebook).to_contain_text(marker(NAMES[-1]))
    watch.assert_clean(root=CELLS, where="the export, untrusted")
    Watch.assert_readable(notebook, NAMES, "the export")
    path = lab.page.evaluate("() => window.jupyterapp.shell.currentWidget.context.path")
    # the command waits for its dialog: start it, answer the dialog as the user would
    lab.page.evaluate("() => { window.jupyterapp.commands.execute('notebook:trust'); }")
    lab.page.locator(".jp-Dialog .jp-mod-accept").click()
    expect(lab.page.locator(".jp-Dialog")).to_have_count(0)
    lab.page.wait_for_timeout(500)
    watch.assert_clean(root=CELLS, where="the export, trusted")
    Watch.assert_readable(notebook, NAMES, "the export, trusted")
    exported = lab.server.base / "root" / path
    _check_nbconvert_html(lab, watch, _converted(lab, exported, tmp_path / "export.html"), NAMES)
    lab.take_errors(r"404 .*api/contents/")  # the export looking for a free name


# -- a notebook's %%agent cells ---------------------------------------------------------------


def _notebook(path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [
        nbformat.v4.new_code_cell("%load_ext agcluster_jupyter"),
        nbformat.v4.new_code_cell(f"%%agent code-assistant\n{HOSTILE_PROMPT}"),
        nbformat.v4.new_code_cell(f"%%agent code-assistant\n{ERROR_PROMPT}"),
    ]
    nbformat.write(nb, path)


def _server_notary(lab: Lab) -> NotebookNotary:
    """The notary of the server (its data dir holds the signatures' database)."""
    data_dir = subprocess.run(
        [sys.executable, "-c", "from jupyter_core.paths import jupyter_data_dir as d; print(d())"],
        env=lab.server.env, check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    return NotebookNotary(data_dir=data_dir)


def _open(lab: Lab, path: str) -> Any:
    lab.execute("docmanager:open", {"path": path})
    notebook = lab.page.locator(".jp-NotebookPanel:visible")
    expect(notebook.locator(".jp-Cell").first).to_be_visible()
    return notebook


def test_notebook_cells_show_agent_content_as_text(lab: Lab, watch: Watch, tmp_path: Path) -> None:
    root_dir = lab.server.base / "root"
    _notebook(root_dir / "xss.ipynb")
    notebook = _open(lab, "xss.ipynb")
    expect(notebook.locator(".jp-Notebook-ExecutionIndicator[data-status=idle]")).to_have_count(
        1, timeout=60_000
    )
    lab.execute("notebook:run-all-cells")
    cells = notebook.locator(".jp-CodeCell")
    widget = cells.nth(1).locator(".jp-Cell-outputArea")
    chat = widget.locator(".widget-output").first
    expect(chat).to_contain_text("All done.", timeout=120_000)
    expect(cells.nth(2).locator(".jp-Cell-outputArea")).to_contain_text(
        marker(NAMES[-1]), timeout=120_000
    )
    watch.assert_clean(root=CELLS, where="the notebook's chat")
    Watch.assert_readable(chat, NAMES, "the widget's chat")
    assert PAYLOADS["img-onerror"] in chat.inner_text()  # raw HTML shows as text
    Watch.assert_readable(cells.nth(2).locator(".widget-output").first, NAMES, "the error")

    # the SVG the agent wrote: an <img> output, never inline markup
    image = cells.nth(1).locator(
        ".jp-Cell-outputArea > .jp-OutputArea-child img[src^='data:image/svg+xml']"
    )
    expect(image).to_have_count(1)

    # the widget's tabs: tools (every call opened), tasks, files with their previews
    tabs = cells.nth(1).locator(".lm-TabBar-tab")
    tabs.filter(has_text="Tools").click()
    for summary in cells.nth(1).locator("details > summary").all():
        summary.click()
    Watch.assert_readable(cells.nth(1).locator(".lm-TabPanel, .widget-tab").first, NAMES, "tools")
    tabs.filter(has_text="Tasks").click()
    Watch.assert_readable(cells.nth(1).locator(".lm-TabPanel, .widget-tab").first, NAMES, "tasks")
    tabs.filter(has_text="Files").click()
    select = cells.nth(1).locator(".widget-select select")
    expect(select.locator("option")).to_have_count(3, timeout=30_000)
    assert marker("file-name") in select.inner_text()

    def pick(path: str) -> None:  # the options read "path  (size)"
        labels = [t.replace("\xa0", " ") for t in select.locator("option").all_inner_texts()]
        select.select_option(index=next(i for i, t in enumerate(labels) if t.startswith(path)))

    for option in (FILE_NAME, "evil.html"):
        pick(option)
        preview = cells.nth(1).locator(".widget-html", has_text=option[-10:]).last
        expect(preview).to_contain_text(marker(NAMES[-1]))
        Watch.assert_readable(preview, NAMES, f"the preview of {option}")
    pick("chart.svg")
    expect(cells.nth(1).locator("img[src^='data:image/svg+xml']")).to_have_count(2)
    watch.assert_clean(root=CELLS, where="the notebook's widget tabs")

    # saved: never signed; reopened in JupyterLab, in Notebook 7, and as nbconvert HTML
    lab.execute("docmanager:save")
    lab.page.wait_for_timeout(500)
    saved = nbformat.read(root_dir / "xss.ipynb", as_version=4)
    outputs = [o for c in saved.cells for o in c.get("outputs", [])]
    assert outputs and all("text/markdown" not in o.get("data", {}) for o in outputs)
    assert not _server_notary(lab).check_signature(saved)
    assert json.dumps(saved).count("agcluster") >= 2
    lab.execute("application:close-all")
    for session in lab.fetch("api/sessions")["body"]:
        lab.fetch(f"api/sessions/{session['id']}", method="DELETE")  # the kernel too
    lab.page.wait_for_timeout(500)
    lab.reload()
    reopened = _open(lab, "xss.ipynb")
    expect(reopened).to_contain_text(marker(NAMES[-1]))
    watch.assert_clean(root=CELLS, where="the notebook reopened in JupyterLab")
    Watch.assert_readable(reopened.locator(".jp-CodeCell").nth(1), NAMES, "the reopened snapshot")

    classic = lab.page.context.new_page()
    try:
        classic.goto(f"{lab.root}notebooks/xss.ipynb")
        expect(classic.locator(".jp-Notebook")).to_contain_text(marker(NAMES[-1]), timeout=60_000)
        watch.assert_clean(classic, root=".jp-Cell", where="the notebook in Notebook 7")
        Watch.assert_readable(classic.locator(".jp-Notebook"), NAMES, "Notebook 7")
    finally:
        classic.close()
    _check_nbconvert_html(
        lab, watch, _converted(lab, root_dir / "xss.ipynb", tmp_path / "nb.html"), NAMES
    )
    lab.take_errors("Comm not found")  # the widgets' comms, gone with their kernel
