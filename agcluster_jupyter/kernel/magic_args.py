"""What ``%%agent`` and ``%agent`` lines mean: their arguments, parsed into ``CellArgs``
and ``LineArgs`` (every mistake a one-line ``UsageError``), and ``{name}`` prompt
interpolation from the user's namespace."""

from __future__ import annotations

import argparse
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

from IPython.core.error import UsageError

from .datafiles import FORMATS

__all__ = [
    "DEFAULT_PRESET",
    "LINE_COMMANDS",
    "PERMISSION_MODES",
    "CellArgs",
    "LineArgs",
    "interpolate",
    "parse_cell_args",
    "parse_line_args",
]

DEFAULT_PRESET = "code-assistant"
PERMISSION_MODES = ("default", "acceptEdits", "plan", "bypassPermissions")
LINE_COMMANDS = (
    "sessions",
    "show",
    "stop",
    "interrupt",
    "files",
    "upload",
    "download",
    "export",
    "config",
    "connect",
    "checkpoints",
    "diff",
    "restore",
    "rewind",
    "undo",
)


# ---------------------------------------------------------------- argument parsing


class _Parser(argparse.ArgumentParser):
    """argparse that raises ``UsageError`` instead of printing and exiting."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        raise UsageError(message.strip() if message else f"{self.prog}: see %agent? for usage")


def _split(line: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError as exc:
        raise UsageError(f"%agent: {exc}") from None


@dataclass(frozen=True)
class CellArgs:
    preset: str
    session: str | None
    new: bool
    out: str | None
    quiet: bool
    #: notebook variables to put into the workspace first: ``(name, format)``
    with_: tuple[tuple[str, str], ...] = ()
    #: a permission mode instead of the preset's (``default`` asks before each tool)
    mode: str | None = None
    #: tools whose permission requests this cell approves by itself (``*`` for all)
    approve: tuple[str, ...] = ()
    #: a folder the agent works in instead of one of its own: ``--here`` is ``.`` (the
    #: notebook's folder); relative paths are from the notebook's folder
    workspace: str | None = None
    #: the reply is written as new cells below the cell (``--cells``)
    cells: bool = False
    #: the session is not granted this notebook's kernel (``--no-kernel``)
    no_kernel: bool = False

    @property
    def key(self) -> str:
        """This kernel's name for the session the cell talks to."""
        if self.session:
            return self.session
        key = f"{self.preset}:{self.mode}" if self.mode else self.preset
        return f"{key} @ {self.workspace}" if self.workspace else key


def _cell_parser() -> _Parser:
    parser = _Parser(prog="%%agent", add_help=False)
    parser.add_argument("preset", nargs="?", default=DEFAULT_PRESET)
    parser.add_argument("--session", "-s", metavar="NAME")
    parser.add_argument("--new", action="store_true")
    parser.add_argument("--out", "-o", metavar="VAR")
    parser.add_argument("--quiet", "-q", action="store_true")
    parser.add_argument("--with", "-w", dest="with_", action="append", default=[], metavar="VAR")
    parser.add_argument("--mode", "-m", choices=PERMISSION_MODES)
    parser.add_argument("--approve", "-a", action="append", default=[], metavar="TOOLS")
    parser.add_argument("--here", action="store_true")
    parser.add_argument("--workspace", metavar="PATH")
    parser.add_argument("--cells", action="store_true")
    parser.add_argument("--no-kernel", dest="no_kernel", action="store_true")
    return parser


def _with_specs(values: list[str]) -> tuple[tuple[str, str], ...]:
    specs: list[tuple[str, str]] = []
    for value in values:
        for item in filter(None, (v.strip() for v in value.split(","))):
            name, _, fmt = item.partition(":")
            if not name.isidentifier():
                raise UsageError(f"%%agent: --with needs a variable name, not {name!r}")
            if fmt and fmt not in FORMATS:
                raise UsageError(
                    f"%%agent: --with {name}:{fmt}: the format is one of {', '.join(FORMATS)}"
                )
            specs.append((name, fmt))
    return tuple(specs)


def parse_cell_args(line: str) -> CellArgs:
    ns = _cell_parser().parse_args(_split(line))
    if ns.out is not None and not ns.out.isidentifier():
        raise UsageError(f"%%agent: --out needs a Python variable name, not {ns.out!r}")
    approve = tuple(t.strip() for v in ns.approve for t in v.split(",") if t.strip())
    if ns.here and ns.workspace is not None:
        raise UsageError("%%agent: --here is the notebook's folder; give it or --workspace")
    if ns.workspace is not None and not ns.workspace.strip():
        raise UsageError("%%agent: --workspace needs a folder")
    workspace = "." if ns.here else ns.workspace
    return CellArgs(
        ns.preset,
        ns.session,
        ns.new,
        ns.out,
        ns.quiet,
        _with_specs(ns.with_),
        ns.mode,
        approve,
        workspace,
        ns.cells,
        ns.no_kernel,
    )


@dataclass(frozen=True)
class LineArgs:
    command: str
    name: str | None = None
    format: str = "ipynb"
    to: str | None = None
    purge: bool = False
    token: str | None = None
    path: str | None = None  # upload: the local file; download: the workspace file
    session: str | None = None  # upload/download: the session (default: the last used)
    target: str = ""
    overwrite: bool = False
    turn: int | None = None  # diff/restore: the turn whose checkpoint is meant
    paths: tuple[str, ...] = ()  # restore: only these workspace paths


def _turn(text: str) -> int:
    """A turn number (1, 2, ...), as ``%agent checkpoints`` lists them."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a turn is a number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("turns count from 1")
    return value


def _line_parser() -> _Parser:
    parser = _Parser(prog="%agent", add_help=False)
    commands = parser.add_subparsers(dest="command", parser_class=_Parser)
    commands.add_parser("sessions", add_help=False)
    show = commands.add_parser("show", add_help=False)
    show.add_argument("name", nargs="?")
    stop = commands.add_parser("stop", add_help=False)
    stop.add_argument("name")
    stop.add_argument("--purge", action="store_true")
    interrupt = commands.add_parser("interrupt", add_help=False)
    interrupt.add_argument("name", nargs="?")
    files = commands.add_parser("files", add_help=False)
    files.add_argument("name")
    export = commands.add_parser("export", add_help=False)
    export.add_argument("name")
    export.add_argument("--format", "-f", choices=("ipynb", "md", "jsonl"), default="ipynb")
    export.add_argument("--to", metavar="PATH")
    config = commands.add_parser("config", add_help=False)
    config.add_argument("name", metavar="preset")
    upload = commands.add_parser("upload", add_help=False)
    upload.add_argument("path")
    upload.add_argument("--session", "-s")
    upload.add_argument("--target", default="", metavar="DIR")
    upload.add_argument("--overwrite", action="store_true")
    download = commands.add_parser("download", add_help=False)
    download.add_argument("path", nargs="?")
    download.add_argument("--session", "-s")
    download.add_argument("--to", metavar="PATH")
    checkpoints = commands.add_parser("checkpoints", add_help=False)
    checkpoints.add_argument("name")
    diff = commands.add_parser("diff", add_help=False)
    diff.add_argument("name")
    diff.add_argument("turn", type=_turn)
    diff.add_argument("path", nargs="?")
    restore = commands.add_parser("restore", add_help=False)
    restore.add_argument("name")
    restore.add_argument("turn", type=_turn)
    restore.add_argument("paths", nargs="*")
    rewind = commands.add_parser("rewind", add_help=False)
    rewind.add_argument("name")
    rewind.add_argument("turn", type=_turn)
    undo = commands.add_parser("undo", add_help=False)
    undo.add_argument("name")
    connect = commands.add_parser("connect", add_help=False)
    connect.add_argument("name", metavar="url")
    connect.add_argument("--token")
    return parser


def parse_line_args(line: str) -> LineArgs:
    words = _split(line)
    if not words:
        raise UsageError(f"%agent: say what to do: {' | '.join(LINE_COMMANDS)}")
    if words[0] not in LINE_COMMANDS:
        raise UsageError(f"%agent: unknown command {words[0]!r}; use {' | '.join(LINE_COMMANDS)}")
    ns = _line_parser().parse_args(words)
    return LineArgs(
        command=ns.command,
        name=getattr(ns, "name", None),
        format=getattr(ns, "format", "ipynb"),
        to=getattr(ns, "to", None),
        purge=getattr(ns, "purge", False),
        token=getattr(ns, "token", None),
        path=getattr(ns, "path", None),
        session=getattr(ns, "session", None),
        target=getattr(ns, "target", ""),
        overwrite=getattr(ns, "overwrite", False),
        turn=getattr(ns, "turn", None),
        paths=tuple(getattr(ns, "paths", ()) or ()),
    )


# ---------------------------------------------------------------- prompt interpolation

_FIELD = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\}")


def interpolate(text: str, namespace: Mapping[str, Any]) -> str:
    """``{name}`` / ``{name.attr}`` → ``str`` of the user's value; ``{{``/``}}`` → braces.

    Anything else in braces (code in the prompt, unknown names) is left as it is.
    """

    def replace(match: re.Match[str]) -> str:
        whole, path = match.group(0), match.group(1)
        if path is None:
            return whole[0]
        head, *attrs = path.split(".")
        if head not in namespace:
            return whole
        value = namespace[head]
        for attr in attrs:
            try:
                value = getattr(value, attr)
            except AttributeError:
                return whole
        return str(value)

    return _FIELD.sub(replace, text)
