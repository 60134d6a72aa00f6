"""``ChangesView``: what each turn changed in the workspace, with its diff, Restore,
Rewind and Undo, as the widget's "Changes" tab.

File names and diffs are the agent's: they are shown as escaped text only.  Every
action goes through the REST API (``AgClusterClient``), so the server's checks apply:
a 409 while a turn runs, the path rules, another user's session a 404.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as widgets

from ...untrusted import text_html
from ..checkpoint_text import format_diff
from ..client import AgClusterClient, AgClusterClientError

__all__ = ["ChangesView"]

#: characters of one turn's diff shown in the notebook (the panel shows it whole)
_DIFF_CHARS = 40_000


class ChangesView(widgets.VBox):
    """The session's checkpoints; ``refresh()`` re-reads them."""

    def __init__(self, client: AgClusterClient | None, session_id: str) -> None:
        self.client = client
        self.session_id = session_id
        self.message = widgets.HTML()
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh")
        self.refresh_button.on_click(lambda _b: self.refresh())
        self.undo_button = widgets.Button(description="Undo last restore", icon="undo")
        self.undo_button.on_click(lambda _b: self.undo())
        self.turns = widgets.VBox()
        self.diff = widgets.HTML()
        super().__init__(
            [
                widgets.HBox([self.refresh_button, self.undo_button]),
                self.message,
                self.turns,
                self.diff,
            ]
        )

    def _say(self, text: str) -> None:
        self.message.value = f"<i>{html.escape(text)}</i>"

    def _call(self, what: str, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except AgClusterClientError as exc:
            self._say(f"{what}: {exc}")
            return None

    def refresh(self) -> None:
        if self.client is None:
            return
        listing = self._call("checkpoints", self.client.checkpoints, self.session_id)
        if listing is None:
            return
        rows: list[widgets.Widget] = []
        for c in reversed(listing.get("checkpoints") or []):
            turn = int(c["turn"])
            label = widgets.HTML(
                f"<b>turn {turn}</b> · {int(c['files_changed'])} file(s): +{int(c['added'])} "
                f"~{int(c['modified'])} -{int(c['deleted'])}, lines +{int(c['lines_added'])} "
                f"-{int(c['lines_removed'])} · <i>{html.escape(str(c.get('prompt', ''))[:80])}</i>"
            )
            buttons = []
            for text, action in (
                ("Diff", self.show_diff),
                ("Restore", self.restore),
                ("Rewind", self.rewind),
            ):
                button = widgets.Button(description=text, layout={"width": "auto"})
                button.on_click(lambda _b, a=action, t=turn: a(t))
                buttons.append(button)
            rows.append(widgets.HBox([label, *buttons], layout={"align_items": "center"}))
        self.turns.children = rows
        if not rows:
            self._say("no checkpoints yet: each turn records one before it starts")
        elif listing.get("pruned_before"):
            self._say(f"turns before {listing['pruned_before']} were pruned")

    def show_diff(self, turn: int) -> None:
        if self.client is None:
            return
        diff = self._call("diff", self.client.diff, self.session_id, turn)
        if diff is not None:
            self.diff.value = text_html(format_diff(diff), limit=_DIFF_CHARS)

    def restore(self, turn: int) -> None:
        if self.client is None:
            return
        done = self._call("restore", self.client.restore, self.session_id, turn)
        if done is not None:
            self._say(f"restored {len(done)} path(s) to before turn {turn}; Undo puts them back")
            self.refresh()

    def rewind(self, turn: int) -> None:
        if self.client is None:
            return
        done = self._call("rewind", self.client.rewind, self.session_id, turn)
        if done is not None:
            self._say(
                f"rewound to before turn {turn}: the agent forgot the later turns and "
                f"{len(done)} path(s) are back; Undo reverses it"
            )
            self.refresh()

    def undo(self) -> None:
        if self.client is None:
            return
        done = self._call("undo", self.client.undo, self.session_id)
        if done is not None:
            self._say(f"put back {len(done)} path(s)")
            self.refresh()
