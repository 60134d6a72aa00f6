"""``%load_ext agcluster_jupyter``, ``%%agent`` and ``%agent`` in a real IPython shell,
talking to a real Jupyter server with the extension (pointed at it explicitly).

The shell runs its cells in a thread: the server runs on the test's event loop."""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import re
import zipfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from jupyter_core.utils import ensure_async

from agcluster_jupyter.kernel.client import AgClusterClient
from agcluster_jupyter.kernel.magics import AgentMagics
from agcluster_jupyter.notebooks.cells import version_of


@pytest.fixture
def jp_root_dir(agent_dirs: dict[str, Path]) -> Path:
    """The Jupyter tree, where the agent user can reach it (a folder workspace is the
    CLI's working directory; pytest's tmp_path is 0700)."""
    root = agent_dirs["base"] / "tree"
    root.mkdir()
    root.chmod(0o755)
    return root


@dataclass
class Ran:
    stdout: str
    stderr: str
    ok: bool


class Shell:
    """One IPython shell; ``await shell.run(code)`` runs a cell off the event loop."""

    opened: list[Shell] = []  # every shell of a test, to close their clients after it

    def __init__(self) -> None:
        self.ip = InteractiveShell.instance()
        Shell.opened.append(self)

    def close(self) -> None:
        magics = self.ip.magics_manager.registry.get("AgentMagics")
        if magics is not None and magics._client is not None:
            magics._client.close()

    def _run(self, code: str) -> Ran:
        with capture_output() as out:
            result = self.ip.run_cell(code)
        return Ran(out.stdout, out.stderr, result.success)

    async def run(self, code: str) -> Ran:
        return await asyncio.to_thread(self._run, code)

    @property
    def ns(self) -> dict[str, Any]:
        ns: dict[str, Any] = self.ip.user_ns
        return ns

    @property
    def magics(self) -> AgentMagics:
        magics: AgentMagics = self.ip.magics_manager.registry["AgentMagics"]
        return magics


@pytest.fixture
def shell() -> Iterator[Shell]:
    InteractiveShell.clear_instance()
    shell = Shell()
    yield shell
    for opened in Shell.opened:
        opened.close()
    Shell.opened.clear()
    InteractiveShell.clear_instance()


@pytest.fixture
async def connected(
    shell: Shell,
    jp_serverapp: Any,
    agcluster_app: Any,
    http_server_client: Any,  # the server listens only once this is set up
    jp_http_port: int,
    jp_base_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Shell]:
    monkeypatch.chdir(tmp_path)
    url = f"http://127.0.0.1:{jp_http_port}{jp_base_url}"
    token = jp_serverapp.identity_provider.token
    loaded = await shell.run("%load_ext agcluster_jupyter")
    assert loaded.ok, loaded.stderr
    ran = await shell.run(f"%agent connect {url} --token {token}")
    assert ran.ok and "connected to" in ran.stdout, ran.stderr
    yield shell

    def purge() -> None:
        with AgClusterClient(url, token) as client:
            for session in client.sessions():
                client.stop(session["session_id"], purge=True)

    await asyncio.to_thread(purge)


async def test_errors_are_one_line_without_traceback(shell: Shell) -> None:
    await shell.run("%load_ext agcluster_jupyter")
    for code, message in [
        ("%agent", "say what to do"),
        ("%agent frobnicate", "unknown command"),
        ("%%agent --bogus\nhi", "unrecognized arguments"),
        ("%%agent\n   ", "it is empty"),
        ("%agent connect http://127.0.0.1:9/ --token x", "cannot reach the Jupyter server"),
    ]:
        ran = await shell.run(code)
        assert not ran.ok, code
        assert "Traceback" not in ran.stderr and message in ran.stderr, (code, ran.stderr)
        assert ran.stderr.strip().count("\n") == 0, ran.stderr


@pytest.mark.cli
def test_plain_ipython_without_a_server_runs_agents_in_process(
    shell: Shell, no_server_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    shell._run("%load_ext agcluster_jupyter")
    ran = shell._run("%%agent -o r\nhello")
    assert ran.ok, ran.stderr
    # one line says where the agents run; the reply streamed as text
    notes = [line for line in ran.stderr.splitlines() if line.startswith("agcluster:")]
    assert len(notes) == 1 and "inside this Python process" in notes[0], ran.stderr
    assert "scripted demo model" in ran.stdout and "Traceback" not in ran.stderr
    assert "scripted demo model" in shell.ns["r"]["text"]
    listing = shell._run("%agent sessions")
    assert listing.ok and shell.ns["r"]["session_id"][:12] in listing.stdout


@pytest.mark.cli
async def test_agent_cell_streams_stores_and_reuses_the_session(connected: Shell) -> None:
    shell = connected
    shell.ns["what"] = "some data"
    ran = await shell.run("%%agent --out reply\nPlease analyse {what}")
    assert ran.ok, ran.stderr
    assert "[Bash python3 analysis.py]" in ran.stdout
    assert "scripted demo model" in ran.stdout
    reply = shell.ns["reply"]
    assert set(reply) == {"text", "result", "session_id", "events"}
    assert "Saturday is the warmest day" in reply["text"]
    assert reply["result"]["type"] == "result"
    assert reply["events"][-1]["type"] == "done"
    prompts = [e["text"] for e in reply["events"] if e["type"] == "message" and e["role"] == "user"]
    assert prompts == ["Please analyse some data"]
    first = reply["session_id"]

    # the same preset reuses the kernel's session; --quiet prints nothing; `_` holds it
    ran = await shell.run("%%agent code-assistant --quiet\nhello")
    assert ran.ok and ran.stdout == "", (ran.stdout, ran.stderr)
    assert shell.ns["_"]["session_id"] == first
    assert "scripted demo model" in shell.ns["_"]["text"]
    # --new and --session start other sessions
    await shell.run("%%agent --new -q\nhello")
    second = shell.ns["_"]["session_id"]
    await shell.run("%%agent --session side -q\nhello")
    side = shell.ns["_"]["session_id"]
    assert len({first, second, side}) == 3
    assert shell.magics.sessions == {"code-assistant": second, "side": side}

    listing = await shell.run("%agent sessions")
    assert listing.ok and first[:12] in listing.stdout and "[side]" in listing.stdout

    files = await shell.run(f"%agent files {first[:8]}")
    assert files.ok and "analysis.py" in files.stdout.split()

    exported = await shell.run(f"%agent export {first[:8]} --to conv")
    assert exported.ok and "wrote conv.ipynb" in exported.stdout
    notebook = nbformat.read("conv.ipynb", as_version=4)
    nbformat.validate(notebook)
    assert any(c.cell_type == "code" and "python3 analysis.py" in c.source for c in notebook.cells)
    md = await shell.run("%agent export side -f md")
    assert md.ok and Path("agent-side.md").read_text().startswith("# side")

    config = await shell.run("%agent config data-analysis")
    assert json.loads(config.stdout)["id"] == "data-analysis"
    assert (await shell.run("%agent interrupt")).stdout.strip() == "nothing was running"

    # upload and download go to the last session unless --session names one
    Path("local.csv").write_text("x\n1\n")
    up = await shell.run("%agent upload local.csv --target in")
    assert up.ok and f"uploaded in/local.csv to {side[:12]}" in up.stdout, up.stderr
    down = await shell.run("%agent download in/local.csv --session side --to back.csv")
    assert down.ok and Path("back.csv").read_text() == "x\n1\n"
    whole = await shell.run("%agent download")
    assert whole.ok, whole.stderr
    archive = zipfile.ZipFile(f"workspace-{side[:8]}.zip")
    assert "in/local.csv" in archive.namelist()
    missing = await shell.run("%agent upload nope.csv")
    assert not missing.ok and "no file 'nope.csv'" in missing.stderr

    stopped = await shell.run("%agent stop side")
    assert stopped.ok and f"stopped {side[:12]}" in stopped.stdout
    assert "side" not in shell.magics.sessions
    unknown = await shell.run("%agent stop nobody")
    assert not unknown.ok and "no session 'nobody'" in unknown.stderr


@pytest.mark.cli
async def test_unknown_preset_is_one_line(connected: Shell) -> None:
    ran = await connected.run("%%agent no-such-preset\nhello")
    assert not ran.ok
    assert "agcluster error 400" in ran.stderr and "Traceback" not in ran.stderr


@pytest.mark.no_server_key
async def test_no_key_is_one_line(connected: Shell) -> None:
    ran = await connected.run("%%agent\nhello")
    assert not ran.ok and "Traceback" not in ran.stderr
    # the server logs to the same stderr here; the shell's part is one UsageError line
    (line,) = [line for line in ran.stderr.splitlines() if line.startswith("UsageError")]
    assert "no Anthropic API key" in line and "ANTHROPIC_API_KEY" in line


@pytest.mark.cli
async def test_a_restarted_kernel_finds_its_notebooks_sessions(
    connected: Shell, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JPY_SESSION_NAME", "/home/ana/work/sales.ipynb")
    ran = await connected.run("%%agent -q\nhello")
    assert ran.ok, ran.stderr
    first = connected.ns["_"]["session_id"]
    url, token = connected.magics.client.url, connected.magics.client._token
    details = await asyncio.to_thread(connected.magics.client.session, first)
    assert details["name"] == "code-assistant · sales.ipynb"

    # a new kernel of the same notebook: nothing in memory, the server still knows
    InteractiveShell.clear_instance()
    fresh = Shell()
    assert (await fresh.run("%load_ext agcluster_jupyter")).ok
    assert (await fresh.run(f"%agent connect {url} --token {token}")).ok
    ran = await fresh.run("%%agent -q\nhello again")
    assert ran.ok, ran.stderr
    assert fresh.ns["_"]["session_id"] == first
    # another notebook's kernel gets a session of its own
    monkeypatch.setenv("JPY_SESSION_NAME", "/home/ana/work/other.ipynb")
    InteractiveShell.clear_instance()
    other = Shell()
    await other.run("%load_ext agcluster_jupyter")
    await other.run(f"%agent connect {url} --token {token}")
    assert (await other.run("%%agent -q\nhello")).ok
    assert other.ns["_"]["session_id"] != first
    # the replayed history, outside a kernel, is the conversation as text
    shown = await fresh.run(f"%agent show {first[:8]}")
    assert shown.ok and "> hello\n" in shown.stdout and "> hello again" in shown.stdout


async def test_checkpoints_diff_restore_and_undo_from_the_notebook(connected: Shell) -> None:
    shell = connected
    ran = await shell.run("%%agent --session work -q\nPlease analyse the data")
    assert ran.ok, ran.stderr
    details = await asyncio.to_thread(shell.magics.client.session, shell.ns["_"]["session_id"])
    workspace = Path(details["workspace"])
    assert (workspace / "analysis.py").is_file()

    listed = await shell.run("%agent checkpoints work")
    assert listed.ok, listed.stderr
    assert listed.stdout.startswith("turn   1  ") and "'Please analyse the data'" in listed.stdout

    diff = await shell.run("%agent diff work 1")
    assert diff.ok, diff.stderr
    assert "added    analysis.py" in diff.stdout
    assert "+import statistics" in diff.stdout or "+++ b/analysis.py" in diff.stdout

    restored = await shell.run("%agent restore work 1")
    assert restored.ok and "analysis.py" in restored.stdout, restored.stderr
    assert not (workspace / "analysis.py").exists()
    undone = await shell.run("%agent undo work")
    assert undone.ok and "put back" in undone.stdout, undone.stderr
    assert (workspace / "analysis.py").is_file()
    rewound = await shell.run("%agent rewind work 1")
    assert rewound.ok and "forgot the later turns" in rewound.stdout, rewound.stderr
    assert not (workspace / "analysis.py").exists()
    assert (await shell.run("%agent undo work")).ok
    assert (workspace / "analysis.py").is_file()

    for bad, says in [
        ("%agent diff work x", "a turn is a number"),
        ("%agent diff work 0", "turns count from 1"),
        ("%agent restore work 1 ../etc/passwd", "400"),
        ("%agent undo work", "nothing to undo|no restore"),
    ]:
        ran = await shell.run(bad)
        assert not ran.ok or "Error" in ran.stderr, (bad, ran.stdout)
        assert re.search(says, ran.stderr), (bad, ran.stderr)
        assert "Traceback" not in ran.stderr, ran.stderr


@pytest.mark.cli
async def test_agent_here_works_in_the_notebooks_folder_and_may_edit_that_notebook(
    connected: Shell,
    monkeypatch: pytest.MonkeyPatch,
    jp_root_dir: Path,
    scripted_model: Any,
    jp_serverapp: Any,
) -> None:
    """``%%agent --here``: a folder workspace on the notebook's folder (the kernel names it
    by its absolute path); the notebook whose cell started the session is granted to the
    jupyter tools even when it lies outside that folder (``--workspace``)."""
    project = jp_root_dir / "project"
    project.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("df = 1", id="c0")]
    notebook = jp_root_dir / "main.ipynb"
    nbformat.write(nb, notebook)
    nbformat.write(nb, project / "inner.ipynb")
    if os.geteuid() == 0:  # the agent user must be able to work in the folder
        nobody = pwd.getpwnam("nobody")
        for path in (jp_root_dir, project, project / "inner.ipynb"):
            os.chown(path, nobody.pw_uid, nobody.pw_gid)
    # the version the tools give it: its content as the server's ContentsManager reads it
    model = await ensure_async(jp_serverapp.contents_manager.get("main.ipynb"))
    version = version_of(json.loads(json.dumps(model["content"])))
    monkeypatch.setenv("JPY_SESSION_NAME", str(project / "inner.ipynb"))
    ran = await connected.run("%%agent --here -q\nwhere am I")
    assert ran.ok, ran.stderr
    sid = connected.ns["_"]["session_id"]
    details = await asyncio.to_thread(connected.magics.client.session, sid)
    assert details["folder"] == "project"
    # a second session in the same folder would be a 409 naming this one
    assert (await connected.run(f"%agent stop {sid}")).ok

    scripted_model.add_scenarios(
        [
            {
                "match": "add a cell to my notebook",
                "steps": [
                    [
                        {
                            "tool_use": {
                                "name": "mcp__jupyter__edit_notebook",
                                "input": {
                                    "path": "main.ipynb",
                                    "version": version,
                                    "edits": [{"op": "insert", "source": "df.plot()"}],
                                },
                            }
                        }
                    ]
                ],
                "final": "{result}",
            }
        ]
    )
    # a notebook of the tree's root, its agent working in project/ by --workspace
    monkeypatch.setenv("JPY_SESSION_NAME", str(notebook))
    ran = await connected.run("%%agent --workspace project --new -q\nadd a cell to my notebook")
    assert ran.ok, ran.stderr
    reply = connected.ns["_"]
    assert reply["session_id"] != sid
    details = await asyncio.to_thread(connected.magics.client.session, reply["session_id"])
    assert details["folder"] == "project" and details["notebook"] == "main.ipynb"
    cells = nbformat.read(notebook, as_version=4).cells
    assert [c.source for c in cells] == ["df = 1", "df.plot()"], reply
    # a folder outside the tree is refused with the server's message
    ran = await connected.run("%%agent --workspace /etc --new -q\nhello")
    assert not ran.ok and "outside the Jupyter tree" in ran.stderr
