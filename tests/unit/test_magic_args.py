"""``%%agent`` / ``%agent`` argument parsing and ``{var}`` interpolation."""

from __future__ import annotations

import types

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from agcluster_jupyter.events import ErrorEvent, Event, MessageEvent, TextDeltaEvent, ToolUseEvent
from agcluster_jupyter.kernel.magic_args import (
    DEFAULT_PRESET,
    CellArgs,
    LineArgs,
    interpolate,
    parse_cell_args,
    parse_line_args,
)
from agcluster_jupyter.kernel.turn_output import TurnRenderer


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("", CellArgs(DEFAULT_PRESET, None, False, None, False)),
        ("data-analysis", CellArgs("data-analysis", None, False, None, False)),
        (
            "research-agent --session lit --new --out reply --quiet",
            CellArgs("research-agent", "lit", True, "reply", True),
        ),
        ("-s 'my session' -o r -q", CellArgs(DEFAULT_PRESET, "my session", False, "r", True)),
        ("--out=r code-assistant", CellArgs("code-assistant", None, False, "r", False)),
    ],
)
def test_cell_args(line: str, expected: CellArgs) -> None:
    assert parse_cell_args(line) == expected


def test_cell_key_is_the_session_name_else_the_preset() -> None:
    assert parse_cell_args("data-analysis").key == "data-analysis"
    assert parse_cell_args("data-analysis --session a").key == "a"


def test_here_and_workspace_name_the_folder_and_a_session_of_its_own() -> None:
    assert parse_cell_args("--here").workspace == "."
    assert parse_cell_args("--here").key == f"{DEFAULT_PRESET} @ ."
    here = parse_cell_args("data-analysis --workspace ../project")
    assert here.workspace == "../project" and here.key == "data-analysis @ ../project"
    assert parse_cell_args("").workspace is None
    with pytest.raises(UsageError, match="--here is the notebook's folder"):
        parse_cell_args("--here --workspace x")
    with pytest.raises(UsageError, match="needs a folder"):
        parse_cell_args("--workspace ''")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("a b", "unrecognized arguments: b"),
        ("--bogus", "unrecognized arguments: --bogus"),
        ("--out", "expected one argument"),
        ("--out 1x", "Python variable name"),
        ("--session 'unclosed", "No closing quotation"),
    ],
)
def test_bad_cell_args_are_one_line_usage_errors(line: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as info:
        parse_cell_args(line)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("sessions", LineArgs("sessions")),
        ("stop data-analysis", LineArgs("stop", "data-analysis")),
        ("stop abc --purge", LineArgs("stop", "abc", purge=True)),
        ("interrupt", LineArgs("interrupt")),
        ("interrupt lit", LineArgs("interrupt", "lit")),
        ("files lit", LineArgs("files", "lit")),
        ("export lit", LineArgs("export", "lit")),
        ("export lit -f md --to out.md", LineArgs("export", "lit", format="md", to="out.md")),
        ("config data-analysis", LineArgs("config", "data-analysis")),
        ("upload d.csv", LineArgs("upload", path="d.csv")),
        (
            "upload d.csv -s lit --target in --overwrite",
            LineArgs("upload", path="d.csv", session="lit", target="in", overwrite=True),
        ),
        ("download", LineArgs("download")),
        ("download out/a.png --to a.png", LineArgs("download", path="out/a.png", to="a.png")),
        ("connect http://h:1/ --token t", LineArgs("connect", "http://h:1/", token="t")),
    ],
)
def test_line_args(line: str, expected: LineArgs) -> None:
    assert parse_line_args(line) == expected


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("", "say what to do"),
        ("launch x", "unknown command 'launch'"),
        ("stop", "required: name"),
        ("export x --format pdf", "invalid choice: 'pdf'"),
        ("files a b", "unrecognized arguments: b"),
        ("upload", "required: path"),
    ],
)
def test_bad_line_args(line: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as info:
        parse_line_args(line)
    assert "\n" not in str(info.value)


def test_interpolation() -> None:
    ns = {"n": 3, "path": "data.csv", "obj": types.SimpleNamespace(shape=(2, 5))}
    assert interpolate("Load {path} and show {n} rows", ns) == "Load data.csv and show 3 rows"
    assert interpolate("shape is {obj.shape}", ns) == "shape is (2, 5)"
    # unknown names, missing attributes, code and escapes are left alone
    assert interpolate("{missing} {obj.nope} {n!r}", ns) == "{missing} {obj.nope} {n!r}"
    assert interpolate("def f(): return {'a': 1}", ns) == "def f(): return {'a': 1}"
    assert interpolate("{{n}} is {n}", ns) == "{n} is 3"


def _turn() -> list[Event]:
    return [
        TextDeltaEvent(text="Hel"),
        TextDeltaEvent(text="lo"),
        TextDeltaEvent(text="inner", parent_tool_use_id="t"),
        MessageEvent(text="Hello"),
        ToolUseEvent(tool_use_id="1", name="Bash", input={"command": "ls"}),
        ErrorEvent(message="over budget", code="budget"),
    ]


def test_renderer_updates_one_html_display_in_a_kernel() -> None:
    InteractiveShell.instance()  # display() publishes through the shell
    renderer = TurnRenderer(rich=True, quiet=False)
    renderer._INTERVAL = 0
    try:
        with capture_output() as out:
            for event in _turn():
                renderer.event(event)
            renderer.close()
    finally:
        InteractiveShell.clear_instance()
    assert out.stdout == ""
    assert len({o.transient["display_id"] for o in out.outputs}) == 1
    # the Markdown as plain text, rendered as sanitized HTML: never text/markdown
    assert all("text/markdown" not in o.data for o in out.outputs)
    final = out.outputs[-1].data["text/plain"]
    assert final.startswith("Hello\n\n") and "`Bash ls`" in final and "inner" not in final
    assert "`error (budget): over budget`" in final
    assert "<code>Bash ls</code>" in out.outputs[-1].data["text/html"]


def test_renderer_prints_plain_text_elsewhere_and_nothing_when_quiet() -> None:
    renderer = TurnRenderer(rich=False, quiet=False)
    with capture_output() as out:
        for event in _turn():
            renderer.event(event)
        renderer.close()
    assert out.stdout == "Hello\n\n[Bash ls]\n[error (budget): over budget]\n"
    quiet = TurnRenderer(rich=False, quiet=True)
    with capture_output() as out:
        for event in _turn():
            quiet.event(event)
        quiet.close()
    assert out.stdout == "" and not out.outputs


def test_with_mode_and_approve_options() -> None:
    args = parse_cell_args("data-analysis --with df --with arr:npy,notes -m default -a Bash,Write")
    assert args.with_ == (("df", ""), ("arr", "npy"), ("notes", ""))
    assert args.mode == "default" and args.approve == ("Bash", "Write")
    # a session per preset *and* mode, unless named
    assert args.key == "data-analysis:default"
    assert parse_cell_args("-m plan -s x").key == "x"
    for line, message in [
        ("--with 1x", "variable name"),
        ("--with df:xlsx", "one of csv, parquet, json, npy"),
        ("--mode sometimes", "invalid choice"),
    ]:
        with pytest.raises(UsageError, match=message):
            parse_cell_args(line)


def test_no_kernel_and_approving_kernel_runs() -> None:
    args = parse_cell_args("data-analysis --no-kernel")
    assert args.no_kernel is True
    assert parse_cell_args("data-analysis").no_kernel is False
    assert parse_cell_args("-a run_cell,run_code").approve == ("run_cell", "run_code")


def test_agent_cells_become_awaits_in_a_kernel() -> None:
    from agcluster_jupyter.kernel.magics import await_agent_cells

    shell = InteractiveShell.instance()
    try:
        code = shell.transform_cell("%%agent data-analysis\nhi {x}\n")
        [line] = await_agent_cells(code.splitlines(keepends=True))
        assert line.startswith(
            "await get_ipython().magics_manager.registry['AgentMagics'].agent_async("
        )
        assert "'data-analysis', 'hi {x}\\n')" in line
        # anything else is left alone
        for other in ("x = 1\n", shell.transform_cell("%%bash\nls\n")):
            lines = other.splitlines(keepends=True)
            assert await_agent_cells(lines) == lines
    finally:
        InteractiveShell.clear_instance()


def test_new_or_changed_images_of_a_turn() -> None:
    from agcluster_jupyter.kernel.turn_output import image_stamps, new_images

    def tree(*files: tuple[str, int, str]) -> dict[str, object]:
        return {
            "tree": [
                {"name": p, "path": p, "type": "file", "size_bytes": n, "modified": m}
                for p, n, m in files
            ]
        }

    before = image_stamps(tree(("old.png", 10, "t1"), ("same.svg", 5, "t1"), ("data.csv", 9, "t1")))
    assert set(before) == {"old.png", "same.svg"}
    after = image_stamps(
        tree(
            ("old.png", 10, "t2"),  # rewritten
            ("same.svg", 5, "t1"),  # untouched
            ("new.JPG", 7, "t2"),
            ("empty.png", 0, "t2"),  # still being written: nothing to show
            ("huge.png", 30 * 1024 * 1024, "t2"),
        )
    )
    assert new_images(before, after) == ["new.JPG", "old.png"]


def test_approve_matches_the_jupyter_tools_by_their_short_names() -> None:
    from types import SimpleNamespace

    from agcluster_jupyter.events import PermissionRequestEvent
    from agcluster_jupyter.kernel.magics import AgentMagics, _Turn

    answered: list[tuple[str, str, str]] = []
    client = SimpleNamespace(permission=lambda *a: answered.append(a))
    magics = SimpleNamespace(client=client)
    turn = _Turn("s1", "hi", approve={"run_cell"})

    def ask(request_id: str, tool: str) -> None:
        event = PermissionRequestEvent(request_id=request_id, tool_name=tool, input={})
        AgentMagics._auto_approve(magics, turn, event)  # type: ignore[arg-type]

    ask("a", "mcp__jupyter__run_cell")
    ask("b", "mcp__jupyter__run_code")  # not the one approved ahead
    ask("c", "mcp__other__run_cell")  # another MCP server's tool: only by its full name
    assert answered == [("s1", "a", "allow")]
