"""``AgentWidget``: one session in a notebook output, fed by its event stream.

A header (state, tokens, cost, Interrupt), Approve/Deny rows for waiting permission
requests, and tabs: the chat (Markdown), the tool timeline (each call expandable, sub-agent
calls nested under their Task), the task list and the workspace browser.  Every change comes
from ``apply(event)`` (the ``%%agent`` cell's stream, or ``follow()``'s background reader of
the session's event log); the buttons call the REST API.  ``SessionView`` holds the state.
"""

from __future__ import annotations

import contextlib
import html
import json
import threading
import time
from typing import Any

import ipywidgets as widgets

from ...errors import first_line
from ...events import Event
from ...untrusted import MARKER_KEY, html_output, markdown_html, text_html
from ..client import AgClusterClient, AgClusterClientError
from .browser import WorkspaceBrowser
from .changes import ChangesView
from .state import ChatEntry, SessionView, ToolCall

__all__ = ["AgentWidget"]

_STATUS_ICONS = {
    "running": "⏳",
    "waiting": "✋",
    "ok": "✓",
    "error": "✗",
    "interrupted": "⏹",
}
_STATE_COLOURS = {
    "busy": "var(--jp-warn-color1, #f57c00)",
    "failed": "var(--jp-error-color1, #d32f2f)",
    "stopped": "var(--jp-ui-font-color2, #757575)",
}
#: seconds between chat re-renders while text streams (deltas can come thousands a second)
_RENDER_INTERVAL = 0.1
#: events rendered the moment they arrive; the rest are coalesced
_RENDER_AT_ONCE = frozenset({"permission_request", "error", "done"})
#: the tools that run code in the user's kernel (the server asks about each run)
KERNEL_RUNS = frozenset({"mcp__jupyter__run_cell", "mcp__jupyter__run_code"})


def highlighted_python(code: str) -> str:
    """The agent's code as HTML: highlighted by Pygments (which escapes every token), in a
    scrolling block; plain escaped text if Pygments is missing."""
    style = "max-height: 24em; overflow: auto; margin: 4px 0"
    try:
        from pygments import highlight
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import PythonLexer
    except ImportError:  # pragma: no cover - IPython depends on Pygments
        return f'<pre style="{style}">{html.escape(code)}</pre>'
    formatter = HtmlFormatter(noclasses=True, nowrap=True)
    return f'<pre style="{style}">{highlight(code, PythonLexer(), formatter)}</pre>'


#: characters of a tool's input or output shown when its row is expanded
_DETAIL_LIMIT = 20_000


def _pre(text: str) -> str:
    return text_html(
        text,
        limit=_DETAIL_LIMIT,
        style="white-space: pre-wrap; max-height: 24em; overflow: auto; margin: 2px 0",
    )


def _markdown_output(text: str) -> dict[str, Any]:
    # the chat's Output widget renders trusted: only sanitized HTML goes in, no Markdown
    return html_output(markdown_html(text), text)


def _entry_markdown(entry: ChatEntry) -> str:
    if entry.role == "user":
        return "**You:** " + entry.text
    if entry.role == "error":
        return f"⚠️ **Error:** {entry.text}"
    return entry.text + (" ▍" if entry.streaming else "")


class _ToolRow:
    """One call of the timeline: an HTML ``<details>`` line (click: its input and output)
    and, for a Task/Agent call, a box of its sub-agent's calls underneath.

    One widget per call (plus a box where there are sub-calls): ipywidgets cost about a
    millisecond each to create, and a long session's history has hundreds of calls."""

    def __init__(self, call: ToolCall) -> None:
        self.line = widgets.HTML(layout={"margin": "1px 0"})
        self.children_box: widgets.VBox | None = None
        self.call = call
        self._shown: tuple[Any, ...] = ()
        self.update(call)

    @property
    def widget(self) -> widgets.Widget:
        """What the timeline shows: the line, or the line over its sub-calls."""
        if self.children_box is None:
            return self.line
        return self._column

    def set_children(self, rows: list[widgets.Widget]) -> None:
        if not rows and self.children_box is None:
            return
        if self.children_box is None:
            self.children_box = widgets.VBox(layout={"margin": "0 0 0 24px"})
            self._column = widgets.VBox([self.line, self.children_box])
        if list(self.children_box.children) != rows:
            self.children_box.children = rows

    def update(self, call: ToolCall) -> None:
        shown = (call.status, call.ended, len(call.children), len(call.notes), len(call.output))
        if shown == self._shown:
            return  # nothing of this call changed since it was drawn
        self._shown = shown
        self.call = call
        duration = f" · {call.duration_s:.1f} s" if call.duration_s is not None else ""
        sub = f" · {len(call.children)} sub-agent calls" if call.children else ""
        head = (
            f"{_STATUS_ICONS[call.status]} <b>{html.escape(call.name)}</b> "
            f"<code>{html.escape(call.summary)}</code>"
            f'<span style="color: var(--jp-ui-font-color2, #757575)">{duration}{sub}</span>'
        )
        detail = "<b>input</b>" + _pre(json.dumps(call.input, indent=2, ensure_ascii=False))
        if call.notes:
            detail += "<b>sub-agent</b>" + _pre("\n\n".join(call.notes))
        if call.output or call.status in ("ok", "error"):
            label = "error" if call.status == "error" else "output"
            detail += f"<b>{label}</b>" + _pre(call.output)
        self.head, self.details = head, detail
        self.line.value = (
            f'<details><summary style="cursor: pointer">{head}</summary>'
            f'<div style="margin-left: 1.5em">{detail}</div></details>'
        )


class AgentWidget(widgets.VBox):
    """A live view of one session; ``apply`` events to it, or ``follow()`` its log."""

    def __init__(
        self,
        client: AgClusterClient | None,
        session_id: str,
        *,
        title: str = "",
        chat_input: bool = False,
    ) -> None:
        self.client = client
        self.session_id = session_id
        self.title = title or session_id[:8]
        self.view = SessionView(session_id)
        self._lock = threading.RLock()
        self._rendered_at = 0.0
        self._trailing: threading.Timer | None = None
        self._rows: dict[str, _ToolRow] = {}
        self._follower: threading.Thread | None = None
        self._follow_client: AgClusterClient | None = None
        self._stop_following = threading.Event()

        self.header = widgets.HTML()
        self.interrupt_button = widgets.Button(
            description="Interrupt", icon="stop", button_style="warning", disabled=True
        )
        self.interrupt_button.on_click(lambda _b: self.interrupt())
        self.notice = widgets.HTML()
        self.permission_box = widgets.VBox()
        self.chat = widgets.Output(layout={"max_height": "32em", "overflow": "auto"})
        self.timeline = widgets.VBox()
        self.tasks = widgets.HTML()
        self.files = WorkspaceBrowser(client, session_id)
        self.changes = ChangesView(client, session_id)
        self.tabs = widgets.Tab(
            [self.chat, self.timeline, self.tasks, self.files, self.changes],
            titles=["Chat", "Tools", "Tasks", "Files", "Changes"],
        )
        self.tabs.observe(self._tab_changed, names="selected_index")
        parts: list[widgets.Widget] = [
            widgets.HBox([self.header, self.interrupt_button], layout={"align_items": "center"}),
            self.notice,
            self.permission_box,
            self.tabs,
        ]
        self.prompt = widgets.Textarea(
            placeholder="Message the agent…", layout={"width": "100%", "height": "4em"}
        )
        self.send_button = widgets.Button(description="Send", icon="paper-plane")
        self.send_button.on_click(lambda _b: self.send(self.prompt.value))
        if chat_input:
            parts.append(widgets.HBox([self.prompt, self.send_button]))
        super().__init__(parts)
        self._render(force=True)

    # -- events in ---------------------------------------------------------------------------

    def apply(self, event: Event) -> bool:
        """Fold one event in and re-render; False for a duplicate.

        Renders are coalesced (at most one per ``_RENDER_INTERVAL``, the last one by a
        timer) except for what a person must see at once: a permission request, an error,
        the end of a turn."""
        with self._lock:
            if not self.view.apply(event):
                return False
            self._render(force=event.type in _RENDER_AT_ONCE)
            if event.type == "done" and self.tabs.selected_index == 3:
                self.files.refresh()
            if event.type in ("done", "rewind") and self.tabs.selected_index == 4:
                self.changes.refresh()
            return True

    def extend(self, events: list[Event]) -> int:
        with self._lock:
            new = sum(1 for e in events if self.view.apply(e))
            self._render(force=True)
            return new

    def flush(self) -> None:
        """Render whatever throttling held back (call at the end of a stream)."""
        with self._lock:
            self._render(force=True)

    # -- actions -----------------------------------------------------------------------------

    def _api(self) -> AgClusterClient:
        if self.client is None:
            raise AgClusterClientError("this widget is not connected to a server")
        return self.client

    def _say(self, text: str, error: bool = False) -> None:
        colour = "var(--jp-error-color1, #d32f2f)" if error else "inherit"
        self.notice.value = f'<span style="color: {colour}">{html.escape(text)}</span>'

    def interrupt(self) -> None:
        try:
            done = self._api().interrupt(self.session_id).get("interrupted")
        except AgClusterClientError as exc:
            self._say(str(exc), error=True)
            return
        self._say("interrupted" if done else "nothing was running")

    def decide(self, request_id: str, decision: str) -> None:
        """Answer a waiting permission request with ``"allow"`` or ``"deny"``."""
        try:
            self._api().permission(self.session_id, request_id, decision)
        except AgClusterClientError as exc:
            self._say(str(exc), error=True)
        else:
            self._say(f"{'approved' if decision == 'allow' else 'denied'}")
        with self._lock:
            self.view.answered(request_id)  # answered or gone: either way, not waiting here
            self._render(force=True)

    def send(self, message: str) -> threading.Thread | None:
        """Send a message from the widget's own input; the reply streams in the background."""
        message = message.strip()
        if not message:
            self._say("type a message first", error=True)
            return None
        client = self._api()
        self.prompt.value = ""

        def run() -> None:
            own = client.clone()  # a thread of its own, connections of its own
            try:
                for event in own.chat(self.session_id, message):
                    self.apply(event)
            except AgClusterClientError as exc:
                self._say(str(exc), error=True)
            finally:
                own.close()
                self.flush()

        thread = threading.Thread(target=run, name=f"agcluster-send-{self.session_id}", daemon=True)
        thread.start()
        return thread

    def follow(self, after: int = 0) -> threading.Thread:
        """Replay the session's event log after ``after`` and keep reading it (a daemon
        thread) until ``close()``; survives a dropped stream by resuming from the last seq."""
        client = self._follow_client = self._api().clone()
        self._stop_following.clear()

        def run() -> None:
            try:
                follow_until_closed()
            finally:
                client.close()

        def follow_until_closed() -> None:
            delay = 0.2
            while not self._stop_following.is_set():
                try:
                    if self.view.last_seq == 0 and after == 0:
                        # the history in one go: one render, not one per event
                        self.extend(list(client.events(self.session_id)))
                    since = max(after, self.view.last_seq)
                    for event in client.events(self.session_id, after=since, follow=True):
                        if self._stop_following.is_set():
                            return
                        self.apply(event)
                        delay = 0.2
                except Exception as exc:  # noqa: BLE001 - a dropped connection: resume
                    if self._stop_following.is_set():
                        return
                    self._say(f"event stream: {first_line(exc)}; reconnecting", error=True)
                finally:
                    self.flush()
                if self.view.state in ("stopped", "failed"):
                    return
                self._stop_following.wait(delay)
                delay = min(delay * 2, 5.0)

        self._follower = threading.Thread(
            target=run, name=f"agcluster-follow-{self.session_id}", daemon=True
        )
        self._follower.start()
        return self._follower

    def close(self) -> None:
        """Stop following (closing the stream wakes the reader at once) and close."""
        self._stop_following.set()
        if self._follow_client is not None:
            self._follow_client.abort_streams()
            with contextlib.suppress(Exception):
                self._follow_client.close()
        super().close()

    # -- rendering ---------------------------------------------------------------------------

    def _tab_changed(self, change: dict[str, Any]) -> None:
        if change.get("new") == 3:
            self.files.refresh()
        elif change.get("new") == 4:
            self.changes.refresh()

    def _render(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._rendered_at < _RENDER_INTERVAL:
            if self._trailing is None:  # render what is held back, even if nothing follows
                self._trailing = threading.Timer(_RENDER_INTERVAL, self.flush)
                self._trailing.daemon = True
                self._trailing.start()
            return
        if self._trailing is not None:
            self._trailing.cancel()
            self._trailing = None
        self._rendered_at = now
        view = self.view
        colour = _STATE_COLOURS.get(view.state, "var(--jp-success-color1, #388e3c)")
        cost = f" · ${view.cost_usd:.4f}" if view.cost_usd else ""
        self.header.value = (
            f"<b>{html.escape(self.title)}</b> <code>{html.escape(self.session_id[:12])}</code>"
            f' · <span style="color: {colour}">●</span> {html.escape(view.state)}'
            f" · {view.tokens:,} tokens ({view.input_tokens:,} in, {view.output_tokens:,} out)"
            f"{cost} · {view.turns} turn{'s' if view.turns != 1 else ''}"
        )
        self.interrupt_button.disabled = not view.busy
        self.chat.outputs = tuple(_markdown_output(_entry_markdown(e)) for e in view.entries)
        self._render_timeline()
        self._render_tasks()
        self._render_permissions()
        done = view.tasks_done
        self.tabs.titles = (
            "Chat",
            f"Tools ({len(view.calls)})",
            f"Tasks ({done}/{len(view.todos)})" if view.todos else "Tasks",
            "Files",
            "Changes",
        )

    def _render_timeline(self) -> None:
        def rows(calls: list[ToolCall]) -> list[widgets.Widget]:
            out = []
            for call in calls:
                row = self._rows.get(call.tool_use_id)
                if row is None:
                    row = self._rows[call.tool_use_id] = _ToolRow(call)
                else:
                    row.update(call)
                row.set_children(rows(call.children))
                out.append(row.widget)
            return out

        top = rows(self.view.timeline)
        if list(self.timeline.children) != top:
            self.timeline.children = top

    def _render_tasks(self) -> None:
        if not self.view.todos:
            self.tasks.value = "<i>No tasks yet: they appear when the agent plans its work.</i>"
            return
        items = []
        for todo in self.view.todos:
            text = html.escape(todo.content)
            if todo.status == "completed":
                items.append(f"<li>☑ <s>{text}</s></li>")
            elif todo.status == "in_progress":
                active = html.escape(todo.activeForm or todo.content)
                items.append(f"<li>◐ <b>{active}</b></li>")
            else:
                items.append(f"<li>☐ {text}</li>")
        self.tasks.value = '<ul style="list-style: none; padding-left: 4px">' + "".join(items)
        self.tasks.value += "</ul>"

    def _render_permissions(self) -> None:
        waiting = self.view.permissions
        shown = {getattr(row, "request_id", None) for row in self.permission_box.children}
        if shown == set(waiting) and len(shown) == len(self.permission_box.children):
            return
        rows = []
        for request in waiting.values():
            approve = widgets.Button(description="Approve", icon="check", button_style="success")
            deny = widgets.Button(description="Deny", icon="times", button_style="danger")
            approve.on_click(lambda _b, rid=request.request_id: self.decide(rid, "allow"))
            deny.on_click(lambda _b, rid=request.request_id: self.decide(rid, "deny"))
            code = request.input.get("code")
            if request.tool_name in KERNEL_RUNS and isinstance(code, str):
                # a run in the user's kernel: where, and all of the code, never a summary
                where = html.escape(str(request.input.get("notebook", "")))
                label = widgets.HTML(
                    f"✋ Run this in the kernel of <b>{where}</b>?{highlighted_python(code)}"
                )
                buttons = widgets.HBox([approve, deny])
                row = widgets.VBox([label, buttons])
            else:
                label = widgets.HTML(
                    f"✋ <b>{html.escape(request.tool_name)}</b> wants to run "
                    f"<code>{html.escape(request.summary)}</code>"
                )
                row = widgets.HBox([label, approve, deny], layout={"align_items": "center"})
            row.request_id = request.request_id
            row.approve, row.deny = approve, deny
            rows.append(row)
        self.permission_box.children = rows

    # -- what a notebook keeps -----------------------------------------------------------------

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        # a static snapshot next to the live view: nbconvert, GitHub and a notebook opened
        # without its kernel show the conversation instead of "Loading widget...".  It is
        # sanitized HTML, never text/markdown: a trusted output renders Markdown's raw HTML
        bundle: dict[str, Any] = super()._repr_mimebundle_(**kwargs) or {}
        snapshot = self.view.markdown() or f"*agent session {self.title}*"
        bundle["text/html"] = markdown_html(snapshot)
        bundle["text/plain"] = snapshot
        return bundle, {MARKER_KEY: {"session_id": self.session_id}}

    def mimebundle(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The display data and metadata of this widget now (live view + snapshot)."""
        return self._repr_mimebundle_()
