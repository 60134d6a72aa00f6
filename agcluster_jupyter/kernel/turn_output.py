"""What a ``%%agent`` cell shows while its turn runs and after: the streamed reply
(``TurnRenderer``) and the images the turn added to the workspace, as cell outputs."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from typing import Any

from IPython.display import display

from ..events import Event
from ..untrusted import IMAGE_SUFFIXES, html_output, image_html, image_mime_type, markdown_html
from .widgets import summarize_input
from .widgets.browser import walk_files

__all__ = ["MAX_IMAGES", "TurnRenderer", "image_stamps", "new_images", "show_image"]

#: images a turn may add as outputs (more are listed in the reply, not shown)
MAX_IMAGES = 10
_IMAGE_MAX_BYTES = 20 * 1024 * 1024


class TurnRenderer:
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


def image_stamps(tree: dict[str, Any]) -> dict[str, tuple[int, str]]:
    return {
        path: (int(node.get("size_bytes") or 0), str(node.get("modified", "")))
        for path, node in walk_files(tree.get("tree", []))
        if path.lower().endswith(IMAGE_SUFFIXES)
    }


def new_images(
    before: Mapping[str, tuple[int, str]], after: Mapping[str, tuple[int, str]]
) -> list[str]:
    """Images that appeared or changed during the turn, in path order."""
    return sorted(
        path
        for path, stamp in after.items()
        if before.get(path) != stamp and 0 < stamp[0] <= _IMAGE_MAX_BYTES
    )


def show_image(path: str, data: bytes) -> None:
    """A workspace image as a cell output: always an ``<img>`` of a ``data:`` URI (an SVG
    inlined as markup would run the agent's script; inside ``<img>`` it runs none)."""
    mime = image_mime_type(path)
    if mime is None:
        return
    output = html_output(image_html(data, mime, path), f"[image: {path}]", {"path": path})
    display(output["data"], metadata=output["metadata"], raw=True)  # type: ignore[no-untyped-call]
