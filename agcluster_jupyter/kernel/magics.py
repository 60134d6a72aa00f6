"""``%%agent`` and ``%agent``: agent sessions from IPython, through the server's REST API.

``%load_ext agcluster_jupyter`` registers them.  The kernel talks to the Jupyter server it
runs under (``AgClusterClient.discover``), so its sessions are the server's sessions;
where there is none (plain IPython), to one started inside this process
(``inprocess.default_client``); ``%agent connect URL [--token T]`` points it elsewhere.
Every error is one line: a ``UsageError`` (IPython prints it without a traceback).
What a line means is parsed in ``magic_args.py``; what a running cell shows is drawn by
``turn_output.py``; this module holds the session bookkeeping and the turn itself.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.display import display

from ..errors import first_line
from ..events import Event, MessageEvent, turn_reply
from .checkpoint_text import format_checkpoints, format_diff
from .client import AgClusterClient, AgClusterClientError, ApiError
from .datafiles import DataFileError, as_file
from .magic_args import (
    DEFAULT_PRESET,
    CellArgs,
    LineArgs,
    interpolate,
    parse_cell_args,
    parse_line_args,
)
from .reply_cells import cells_bundle, reply_cells
from .turn_output import MAX_IMAGES, TurnRenderer, image_stamps, new_images, show_image
from .widgets import AgentWidget
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

# ---------------------------------------------------------------- a turn's plumbing


@dataclass
class _Turn:
    session_id: str
    prompt: str
    #: image files in the workspace before the turn: path → (size, modified)
    images: dict[str, tuple[int, str]] = field(default_factory=dict)
    approve: set[str] = field(default_factory=set)
    events: list[Event] = field(default_factory=list)


async def _stream_in_thread(client: AgClusterClient, turn: _Turn) -> AsyncIterator[Event]:
    """``client.chat`` read in a worker thread, handed to the event loop as it comes."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Event | BaseException | None] = asyncio.Queue()

    def read() -> None:
        try:
            for event in client.chat(turn.session_id, turn.prompt):
                loop.call_soon_threadsafe(queue.put_nowait, event)
        except BaseException as exc:  # noqa: BLE001 - handed over to the loop, raised there
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
            workspace=self._workspace_path(args.workspace),
            kernel_access="deny" if args.no_kernel else None,
        )
        session_id: str = reply["session_id"]
        self.sessions[args.key] = session_id
        return session_id

    @staticmethod
    def _workspace_path(workspace: str | None) -> str | None:
        """``--here`` / ``--workspace``: the folder as an absolute path, relative ones from
        the notebook's folder (the kernel's working directory), as in the notebook's code;
        the server takes it when it lies in its tree."""
        if workspace is None:
            return None
        notebook = os.environ.get("JPY_SESSION_NAME", "")
        base = Path(notebook).parent if os.path.isabs(notebook) else Path.cwd()
        return os.path.normpath(base / Path(workspace).expanduser())

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
        images = image_stamps(self.client.files(session_id)) if self._rich() else {}
        return _Turn(session_id, prompt, images, set(args.approve))

    def _auto_approve(self, turn: _Turn, event: Event) -> None:
        if event.type != "permission_request" or not turn.approve:
            return
        # the jupyter tools by their short names too: --approve run_cell
        short = event.tool_name.removeprefix("mcp__jupyter__")
        if {"*", "all", event.tool_name, short} & turn.approve:
            self.client.permission(turn.session_id, event.request_id, "allow")

    def _finish(self, args: CellArgs, turn: _Turn) -> dict[str, Any]:
        reply = turn_reply(turn.session_id, turn.events)
        if self._rich() and turn.session_id:
            try:
                shown = image_stamps(self.client.files(turn.session_id))
            except AgClusterClientError:
                shown = {}
            for path in new_images(turn.images, shown)[:MAX_IMAGES]:
                show_image(path, self.client.read_bytes(turn.session_id, path))
                reply.setdefault("images", []).append(path)
        if args.cells and self._rich():
            cells = reply_cells(str(reply.get("text") or ""))
            if cells:
                key = f"{turn.session_id}:{uuid.uuid4().hex[:12]}"
                display(cells_bundle(key, cells), raw=True)  # type: ignore[no-untyped-call]
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
        [--out VAR] [--quiet] [--with VAR[:FORMAT]] [--mode MODE] [--approve TOOLS]
        [--here | --workspace PATH] [--cells] [--no-kernel]``.  ``{name}`` in the cell is
        replaced by that variable; ``--here`` has the agent work in the notebook's folder,
        ``--workspace`` in that one (from the notebook's folder), instead of a folder of
        its own; ``--cells`` writes the reply as new cells below (code blocks as code
        cells).  The session is granted this notebook's kernel (every run asks first;
        ``--approve run_cell`` approves those for this cell), unless ``--no-kernel``."""
        args, prompt = self._prepare(line, cell)
        renderer = TurnRenderer(self._rich(), args.quiet)
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
        elif args.command == "checkpoints":
            print(format_checkpoints(self.client.checkpoints(self._resolve(name))))
        elif args.command == "diff":
            assert args.turn is not None
            print(format_diff(self.client.diff(self._resolve(name), args.turn, args.path)))
        elif args.command == "restore":
            assert args.turn is not None
            done = self.client.restore(self._resolve(name), args.turn, list(args.paths) or None)
            print(
                f"restored {len(done)} path(s) to before turn {args.turn}"
                + (f": {', '.join(done)}" if done else "")
                + f"; %agent undo {name} puts them back"
            )
        elif args.command == "rewind":
            assert args.turn is not None
            done = self.client.rewind(self._resolve(name), args.turn)
            print(
                f"rewound to before turn {args.turn}: the agent forgot the later turns, and "
                f"{len(done)} path(s) are back; %agent undo {name} reverses it"
            )
        elif args.command == "undo":
            done = self.client.undo(self._resolve(name))
            print(f"put back {len(done)} path(s)" + (f": {', '.join(done)}" if done else ""))
        return None
