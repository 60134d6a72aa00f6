"""``%%agent`` and ``%agent``: agent sessions from IPython, through the server's REST API.

``%load_ext agcluster_jupyter`` registers them.  The kernel talks to the Jupyter server it
runs under (``AgClusterClient.discover``), so its sessions are the server's sessions;
where there is none (plain IPython), to one started inside this process
(``inprocess.default_client``); ``%agent connect URL [--token T]`` points it elsewhere.
Every error is one line: a ``UsageError`` (IPython prints it without a traceback).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shlex
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.display import display

from ..errors import first_line
from ..events import Event, MessageEvent, turn_reply
from ..untrusted import IMAGE_SUFFIXES, html_output, image_html, image_mime_type, markdown_html
from .client import AgClusterClient, AgClusterClientError, ApiError
from .datafiles import FORMATS, DataFileError, as_file
from .widgets import AgentWidget, summarize_input
from .widgets.browser import walk_files

__all__ = [
    "DEFAULT_PRESET",
    "AgentMagics",
    "CellArgs",
    "LineArgs",
    "await_agent_cells",
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

    @property
    def key(self) -> str:
        """This kernel's name for the session the cell talks to."""
        if self.session:
            return self.session
        return f"{self.preset}:{self.mode}" if self.mode else self.preset


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
    return CellArgs(
        ns.preset,
        ns.session,
        ns.new,
        ns.out,
        ns.quiet,
        _with_specs(ns.with_),
        ns.mode,
        approve,
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


# ---------------------------------------------------------------- output while a turn runs


class _Renderer:
    """Streams a turn to the cell's output: one updated Markdown display in a kernel, plain
    text on stdout elsewhere (a terminal IPython cannot update a display)."""

    _INTERVAL = 0.1  # s between display updates: deltas can come thousands a second

    def __init__(self, rich: bool, quiet: bool) -> None:
        self.rich, self.quiet = rich, quiet
        self.parts: list[str] = []
        self._handle: Any = None
        self._shown = 0.0
        self._line_open = False

    def _text(self, text: str) -> None:
        self.parts.append(text)
        if self.rich:
            self._update()
        else:
            sys.stdout.write(text)
            sys.stdout.flush()
            self._line_open = not text.endswith("\n")

    def _note(self, text: str) -> None:
        if self.rich:
            self.parts.append(f"\n\n`{text}`\n\n")
            self._update()
        else:
            if self._line_open:
                sys.stdout.write("\n")
            sys.stdout.write(f"[{text}]\n")
            sys.stdout.flush()
            self._line_open = False

    def _update(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._shown < self._INTERVAL:
            return
        self._shown = now
        # the cell's own output renders trusted: sanitized HTML only, never Markdown
        text = "".join(self.parts)
        output = html_output(markdown_html(text), text)
        if self._handle is None:
            self._handle = display(  # type: ignore[no-untyped-call]
                output["data"], metadata=output["metadata"], raw=True, display_id=True
            )
        else:
            self._handle.update(output["data"], metadata=output["metadata"], raw=True)

    def event(self, event: Event) -> None:
        if self.quiet:
            return
        if event.type == "text_delta" and not event.parent_tool_use_id:
            self._text(event.text)
        elif event.type == "message" and event.role == "assistant" and not event.parent_tool_use_id:
            self._text("\n\n")  # one text block ends; the next starts a paragraph
        elif event.type == "tool_use":
            subject = summarize_input(event.input, session_id=event.session_id)
            self._note(f"{event.name} {subject}".strip())
        elif event.type == "permission_request":
            self._note(f"waiting for approval of {event.tool_name} (answer it in the panel)")
        elif event.type == "error":
            self._note(f"error ({event.code}): {event.message}")

    def close(self) -> None:
        if self.quiet:
            return
        if self.rich and self.parts:
            self._update(force=True)
        elif self._line_open:
            sys.stdout.write("\n")
            sys.stdout.flush()


# ---------------------------------------------------------------- a turn's plumbing

#: images a turn may add as outputs (more are listed in the reply, not shown)
_MAX_IMAGES = 10
_IMAGE_MAX_BYTES = 20 * 1024 * 1024


@dataclass
class _Turn:
    session_id: str
    prompt: str
    #: image files in the workspace before the turn: path → (size, modified)
    images: dict[str, tuple[int, str]] = field(default_factory=dict)
    approve: set[str] = field(default_factory=set)
    events: list[Event] = field(default_factory=list)


def _images(tree: dict[str, Any]) -> dict[str, tuple[int, str]]:
    return {
        path: (int(node.get("size_bytes") or 0), str(node.get("modified", "")))
        for path, node in walk_files(tree.get("tree", []))
        if path.lower().endswith(IMAGE_SUFFIXES)
    }


def _new_images(
    before: Mapping[str, tuple[int, str]], after: Mapping[str, tuple[int, str]]
) -> list[str]:
    """Images that appeared or changed during the turn, in path order."""
    return sorted(
        path
        for path, stamp in after.items()
        if before.get(path) != stamp and 0 < stamp[0] <= _IMAGE_MAX_BYTES
    )


def _show_image(path: str, data: bytes) -> None:
    """A workspace image as a cell output: always an ``<img>`` of a ``data:`` URI (an SVG
    inlined as markup would run the agent's script; inside ``<img>`` it runs none)."""
    mime = image_mime_type(path)
    if mime is None:
        return
    output = html_output(image_html(data, mime, path), f"[image: {path}]", {"path": path})
    display(output["data"], metadata=output["metadata"], raw=True)  # type: ignore[no-untyped-call]


async def _stream_in_thread(client: AgClusterClient, turn: _Turn) -> AsyncIterator[Event]:
    """``client.chat`` read in a worker thread, handed to the event loop as it comes."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Event | BaseException | None] = asyncio.Queue()

    def read() -> None:
        try:
            for event in client.chat(turn.session_id, turn.prompt):
                loop.call_soon_threadsafe(queue.put_nowait, event)
        except BaseException as exc:  # handed over to the loop, raised there
            loop.call_soon_threadsafe(queue.put_nowait, exc)
        else:
            loop.call_soon_threadsafe(queue.put_nowait, None)
        finally:
            client.close()

    thread = threading.Thread(target=read, name=f"agcluster-chat-{turn.session_id}", daemon=True)
    thread.start()
    while True:
        item = await queue.get()
        if item is None:
            return
        if isinstance(item, BaseException):
            raise item
        yield item


# ---------------------------------------------------------------- running %%agent cells async

_CELL_CALL = "get_ipython().run_cell_magic('agent', "


def await_agent_cells(lines: list[str]) -> list[str]:
    """IPython input transformer: a ``%%agent`` cell becomes ``await`` of the async magic.

    ipykernel runs a cell with a top-level ``await`` on its event loop, and keeps handling
    widget messages while it waits; that is what lets the widget's buttons work mid-turn.
    """
    if len(lines) == 1 and lines[0].startswith(_CELL_CALL):
        rest = lines[0][len(_CELL_CALL) :]
        return [f"await get_ipython().magics_manager.registry['AgentMagics'].agent_async({rest}"]
    return lines


# ---------------------------------------------------------------- the magics


def _default_client() -> AgClusterClient:
    # the server this kernel runs under, else one inside this process (plain IPython)
    from .inprocess import default_client

    return default_client()


@magics_class
class AgentMagics(Magics):
    """``%%agent`` and ``%agent``; sessions are remembered per kernel by name."""

    def __init__(
        self,
        shell: InteractiveShell | None = None,
        client_factory: Callable[[], AgClusterClient] | None = None,
    ) -> None:
        super().__init__(shell)
        self._factory = client_factory or _default_client
        self._client: AgClusterClient | None = None
        self.sessions: dict[str, str] = {}  # kernel name (preset or --session) → session id
        self.last: str | None = None  # the session of the last %%agent cell

    # -- plumbing --------------------------------------------------------------------------

    @property
    def client(self) -> AgClusterClient:
        if self._client is None:
            try:
                self._client = self._factory()
            except AgClusterClientError as exc:
                raise UsageError(first_line(exc)) from None
        return self._client

    def connect(self, url: str, token: str = "") -> None:
        if self._client is not None:
            self._client.close()
        self._client = AgClusterClient(url, token)

    def _resolve(self, name: str) -> str:
        """A session id from this kernel's name for it, an id, an id prefix or a name."""
        if name in self.sessions:
            return self.sessions[name]
        sessions = self.client.sessions()
        for session in sessions:
            if session["session_id"] == name:
                return name
        found: list[str] = [
            str(s["session_id"])
            for s in sessions
            if s["session_id"].startswith(name) or s.get("name") == name
        ]
        if len(found) == 1:
            return found[0]
        if found:
            raise UsageError(f"%agent: {name!r} matches {len(found)} sessions; use more of its id")
        raise UsageError(f"%agent: no session {name!r}; see %agent sessions")

    def _current(self, name: str | None) -> str:
        """The named session, else the one the last ``%%agent`` cell used."""
        if name:
            return self._resolve(name)
        if self.last is None:
            raise UsageError("%agent: no session yet; run an %%agent cell or pass --session")
        return self.last

    def _session_name(self, key: str) -> str:
        """The server-side name of this kernel's session ``key``: with the notebook's file
        name, so a restarted kernel of the same notebook finds its sessions again."""
        notebook = os.environ.get("JPY_SESSION_NAME", "")
        return f"{key} · {Path(notebook).name}" if notebook else key

    def _find_live(self, name: str) -> str | None:
        """The newest running session the server knows by ``name`` (after a kernel restart)."""
        found = [
            s
            for s in self.client.sessions()
            if s.get("name") == name and s.get("state") not in ("stopped", "stopping", "failed")
        ]
        found.sort(key=lambda s: str(s.get("created_at", "")))
        return str(found[-1]["session_id"]) if found else None

    def _launch_body(self, args: CellArgs) -> dict[str, Any]:
        if args.mode is None:
            return {"config_id": args.preset}
        config = self.client.config(args.preset)
        config["permission_mode"] = args.mode
        return {"config": config}

    def _session_for(self, args: CellArgs) -> str:
        known = None if args.new else self.sessions.get(args.key)
        if known is not None:
            try:
                self.client.session(known)
                return known
            except ApiError as exc:
                if exc.status != 404:
                    raise
        name = self._session_name(args.key)
        if not args.new:
            found = self._find_live(name)
            if found is None and args.session:
                found = self._find_live(args.session)
            if found is not None:
                self.sessions[args.key] = found
                return found
        body = self._launch_body(args)
        reply = self.client.launch(
            body.get("config_id"),
            config=body.get("config"),
            name=name,
            notebook=os.environ.get("JPY_SESSION_NAME") or None,
        )
        session_id: str = reply["session_id"]
        self.sessions[args.key] = session_id
        return session_id

    def _rich(self) -> bool:
        # only a kernel's front end can update a display in place
        return getattr(self.shell, "kernel", None) is not None

    # -- %%agent ---------------------------------------------------------------------------

    def _prepare(self, line: str, cell: str) -> tuple[CellArgs, str]:
        args = parse_cell_args(line)
        namespace = self.shell.user_ns if self.shell is not None else {}
        prompt = interpolate(cell, namespace).strip()
        if not prompt:
            raise UsageError("%%agent: the cell is the prompt, and it is empty")
        for name, _fmt in args.with_:
            if name not in namespace:
                raise UsageError(f"%%agent: --with {name}: no variable {name!r} in the notebook")
        return args, prompt

    def _start(self, args: CellArgs, prompt: str) -> _Turn:
        """Find or launch the session, put ``--with`` data in, note the images there."""
        session_id = self._session_for(args)
        self.last = session_id
        namespace = self.shell.user_ns if self.shell is not None else {}
        notes: list[str] = []
        if args.with_:
            files: dict[str, bytes] = {}
            for name, fmt in args.with_:
                try:
                    data_file = as_file(name, namespace[name], fmt)
                except DataFileError as exc:
                    raise UsageError(f"%%agent: {exc}") from None
                files[data_file.filename] = data_file.data
                notes.append(data_file.description)
            self.client.upload(session_id, files, overwrite=True)
            prompt += "\n\n(Files from the notebook, in your working directory:\n- "
            prompt += "\n- ".join(notes) + ")"
        images = _images(self.client.files(session_id)) if self._rich() else {}
        return _Turn(session_id, prompt, images, set(args.approve))

    def _auto_approve(self, turn: _Turn, event: Event) -> None:
        if event.type != "permission_request" or not turn.approve:
            return
        if "*" in turn.approve or "all" in turn.approve or event.tool_name in turn.approve:
            self.client.permission(turn.session_id, event.request_id, "allow")

    def _finish(self, args: CellArgs, turn: _Turn) -> dict[str, Any]:
        reply = turn_reply(turn.session_id, turn.events)
        if self._rich() and turn.session_id:
            try:
                shown = _images(self.client.files(turn.session_id))
            except AgClusterClientError:
                shown = {}
            for path in _new_images(turn.images, shown)[:_MAX_IMAGES]:
                _show_image(path, self.client.read_bytes(turn.session_id, path))
                reply.setdefault("images", []).append(path)
        if self.shell is not None:
            self.shell.user_ns[args.out or "_"] = reply
        return reply

    def _widget(self, turn: _Turn, args: CellArgs) -> AgentWidget:
        widget = AgentWidget(self.client, turn.session_id, title=self._session_name(args.key))
        widget.view.apply(MessageEvent(role="user", text=turn.prompt))  # shown at once
        return widget

    @cell_magic
    def agent(self, line: str, cell: str) -> None:
        """Send the cell to an agent: ``%%agent [PRESET] [--session NAME] [--new]
        [--out VAR] [--quiet] [--with VAR[:FORMAT]] [--mode MODE] [--approve TOOLS]``.
        ``{name}`` in the cell is replaced by that variable."""
        args, prompt = self._prepare(line, cell)
        renderer = _Renderer(self._rich(), args.quiet)
        turn = _Turn("", prompt)
        try:
            turn = self._start(args, prompt)
            for event in self.client.chat(turn.session_id, turn.prompt):
                turn.events.append(event)
                renderer.event(event)
                self._auto_approve(turn, event)
        except AgClusterClientError as exc:
            raise UsageError(first_line(exc)) from None
        except KeyboardInterrupt:
            self._interrupt_quietly(turn.session_id)
        finally:
            renderer.close()
        self._finish(args, turn)

    async def agent_async(self, line: str, cell: str) -> None:
        """``%%agent`` in a kernel: the turn streams into an ``AgentWidget`` while the
        kernel's loop keeps running, so its Approve/Deny and Interrupt buttons work
        mid-turn (ipykernel dispatches widget messages while a cell awaits)."""
        args, prompt = self._prepare(line, cell)
        turn = _Turn("", prompt)
        handle: Any = None
        widget: AgentWidget | None = None
        try:
            turn = await asyncio.to_thread(self._start, args, prompt)
            if not args.quiet:
                widget = self._widget(turn, args)
                data, metadata = widget.mimebundle()
                handle = display(data, metadata=metadata, raw=True, display_id=True)  # type: ignore[no-untyped-call]
            async for event in _stream_in_thread(self.client.clone(), turn):
                turn.events.append(event)
                if widget is not None:
                    widget.apply(event)
                if event.type == "permission_request":
                    await asyncio.to_thread(self._auto_approve, turn, event)
        except AgClusterClientError as exc:
            raise UsageError(first_line(exc)) from None
        except (KeyboardInterrupt, asyncio.CancelledError):
            await asyncio.to_thread(self._interrupt_quietly, turn.session_id)
        finally:
            if widget is not None:
                widget.flush()
                data, metadata = widget.mimebundle()  # the static snapshot, final
                handle.update(data, metadata=metadata, raw=True)
        await asyncio.to_thread(self._finish, args, turn)

    def _interrupt_quietly(self, session_id: str) -> None:
        if session_id:
            try:
                self.client.interrupt(session_id)
            except AgClusterClientError:
                pass
        print("\n%%agent: interrupted", file=sys.stderr)

    # -- %agent ----------------------------------------------------------------------------

    @line_magic("agent")  # type: ignore[arg-type]  # IPython's decorator types are loose
    def agent_line(self, line: str) -> Any:
        """``%agent COMMAND``, one of::

        sessions                      all sessions of the server; [name] marks this kernel's
        show [NAME]                   a live widget of a session (its whole history, then
                                      live; chat from it): how to re-attach after a restart
        stop NAME [--purge]           stop a session (and delete its workspace)
        interrupt [NAME]              stop the running turn (default: the last session)
        files NAME                    the workspace's files
        upload PATH [--session NAME] [--target DIR] [--overwrite]
        download [PATH] [--session NAME] [--to PATH]   a file, or the workspace as ZIP
        export NAME [--format ipynb|md|jsonl] [--to PATH]
        config PRESET                 a preset's whole config
        connect URL [--token T]       use that Jupyter server instead of this kernel's
        """
        args = parse_line_args(line)
        try:
            return self._run_line(args)
        except AgClusterClientError as exc:
            raise UsageError(first_line(exc)) from None

    def _show(self, session_id: str) -> AgentWidget | None:
        """A live widget of the session: its whole log replayed, then followed, with an
        input to chat from the widget.  Outside a kernel: the conversation as text."""
        title = next((k for k, v in self.sessions.items() if v == session_id), session_id[:8])
        widget = AgentWidget(self.client, session_id, title=title, chat_input=True)
        if not self._rich():
            widget.extend(list(self.client.events(session_id)))
            print(widget.view.markdown())
            return None
        widget.follow()
        display(widget)  # type: ignore[no-untyped-call]
        return None

    def _run_line(self, args: LineArgs) -> Any:
        name = args.name or ""
        if args.command == "connect":
            self.connect(name, args.token or "")
            health = self.client.health()
            print(f"connected to {self.client.url} (agcluster {health.get('version')})")
        elif args.command == "show":
            return self._show(self._current(name or None))
        elif args.command == "sessions":
            mine = {sid: key for key, sid in self.sessions.items()}
            for s in self.client.sessions():
                here = f"  [{mine[s['session_id']]}]" if s["session_id"] in mine else ""
                print(
                    f"{s['session_id'][:12]}  {s['config_id']:<16} {s['state']:<8} "
                    f"turns={s.get('turns', 0)}  {s.get('name') or ''}{here}"
                )
        elif args.command == "stop":
            session_id = self._resolve(name)
            self.client.stop(session_id, purge=args.purge)
            self.sessions = {k: v for k, v in self.sessions.items() if v != session_id}
            print(
                f"stopped {session_id[:12]}" + (" and purged its workspace" if args.purge else "")
            )
        elif args.command == "interrupt":
            current = self._resolve(name) if name else self.last
            if current is None:
                raise UsageError("%agent interrupt: no session yet; name one")
            done = self.client.interrupt(current)["interrupted"]
            print("interrupted" if done else "nothing was running")
        elif args.command == "files":
            tree = self.client.files(self._resolve(name))
            paths = [path for path, _node in walk_files(tree.get("tree", []))]
            print("\n".join(paths) if paths else "(no files yet)")
        elif args.command == "export":
            session_id = self._resolve(name)
            body = self.client.export(session_id, args.format)
            target = Path(args.to or f"agent-{name if name in self.sessions else session_id[:8]}")
            if not target.suffix:
                target = target.with_suffix(f".{args.format}")
            target.write_text(body, encoding="utf-8")
            print(f"wrote {target}")
            return None
        elif args.command == "upload":
            session_id = self._current(args.session)
            local = Path(args.path or "")
            if not local.is_file():
                raise UsageError(f"%agent upload: no file {str(local)!r}")
            done = self.client.upload(
                session_id, {local.name: local}, target_path=args.target, overwrite=args.overwrite
            )
            print(f"uploaded {', '.join(u['path'] for u in done)} to {session_id[:12]}")
        elif args.command == "download":
            session_id = self._current(args.session)
            if args.path:
                data = self.client.read_bytes(session_id, args.path)
                target = Path(args.to or Path(args.path).name)
            else:  # the whole workspace
                data = self.client.download(session_id)
                target = Path(args.to or f"workspace-{session_id[:8]}.zip")
            target.write_bytes(data)
            print(f"wrote {target} ({len(data)} bytes)")
        elif args.command == "config":
            print(json.dumps(self.client.config(name), indent=2))
        return None
