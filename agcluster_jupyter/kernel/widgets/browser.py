"""``WorkspaceBrowser``: a session's workspace in a notebook: tree, preview, upload, download.

Downloads land next to the notebook (the kernel's working directory), never overwriting a
file there; uploads refuse to replace a workspace file unless "Overwrite" is ticked (the
server answers 409 otherwise).  All of it goes through the REST API, so the same path
safety applies as everywhere else.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ipywidgets as widgets

from ...units import format_bytes
from ...untrusted import image_html, image_mime_type, text_html
from ..client import AgClusterClient, AgClusterClientError, ApiError

__all__ = ["WorkspaceBrowser", "flatten_tree", "free_name", "walk_files"]

#: a preview shows at most this much text, and images up to this size inline
_PREVIEW_CHARS = 20_000
_INLINE_IMAGE_BYTES = 2 * 1024 * 1024


def walk_files(
    nodes: list[dict[str, Any]], prefix: str = ""
) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(path, node)`` of every file under a ``files/{id}`` tree, in tree order."""
    for node in nodes:
        path = str(node.get("path") or f"{prefix}{node.get('name', '')}")
        if node.get("type") == "directory" or node.get("children") is not None:
            yield from walk_files(node.get("children") or [], f"{path}/")
        else:
            yield path, node


def flatten_tree(nodes: list[dict[str, Any]]) -> list[tuple[str, int]]:
    """``(path, size_bytes)`` of every file under a ``files/{id}`` tree, in tree order."""
    return [(path, int(node.get("size_bytes") or 0)) for path, node in walk_files(nodes)]


def free_name(folder: Path, name: str) -> Path:
    """``folder/name``, or ``folder/stem (2).ext``... if that exists: never overwrite."""
    target = folder / name
    number = 2
    while target.exists():
        target = folder / f"{Path(name).stem} ({number}){Path(name).suffix}"
        number += 1
    return target


class WorkspaceBrowser(widgets.VBox):
    """The files of one session's workspace; ``refresh()`` re-reads the tree."""

    def __init__(self, client: AgClusterClient | None, session_id: str) -> None:
        self.client = client
        self.session_id = session_id
        self.download_folder = Path.cwd()
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh")
        self.download_button = widgets.Button(
            description="Download",
            icon="download",
            disabled=True,
            tooltip="save next to the notebook",
        )
        self.zip_button = widgets.Button(description="Download all (ZIP)", icon="file-archive-o")
        self.upload = widgets.FileUpload(multiple=True, description="Upload")
        self.overwrite = widgets.Checkbox(description="Overwrite", indent=False)
        self.files = widgets.Select(options=[], rows=10, layout={"width": "100%"})
        self.preview = widgets.HTML()
        self.status = widgets.HTML()
        self.refresh_button.on_click(lambda _b: self.refresh())
        self.download_button.on_click(lambda _b: self.download_selected())
        self.zip_button.on_click(lambda _b: self.download_zip())
        self.upload.observe(self._uploaded, names="value")
        self.files.observe(self._selected, names="value")
        super().__init__(
            [
                widgets.HBox(
                    [
                        self.refresh_button,
                        self.upload,
                        self.overwrite,
                        self.download_button,
                        self.zip_button,
                    ]
                ),
                self.files,
                self.status,
                self.preview,
            ]
        )

    def _say(self, text: str, error: bool = False) -> None:
        colour = "var(--jp-error-color1, #d32f2f)" if error else "inherit"
        self.status.value = f'<span style="color: {colour}">{html.escape(text)}</span>'

    def _api(self) -> AgClusterClient:
        if self.client is None:
            raise AgClusterClientError("not connected to a server")
        return self.client

    @property
    def paths(self) -> list[str]:
        return [str(value) for _label, value in self.files.options]

    def refresh(self) -> None:
        try:
            tree = self._api().files(self.session_id)
        except AgClusterClientError as exc:
            self._say(str(exc), error=True)
            return
        entries = flatten_tree(tree.get("tree", []))
        selected = self.files.value
        self.files.options = [(f"{path}  ({format_bytes(size)})", path) for path, size in entries]
        if selected in self.paths:
            self.files.value = selected
        self._say(f"{len(entries)} file{'s' if len(entries) != 1 else ''}")

    def _selected(self, change: dict[str, Any]) -> None:
        path = change.get("new")
        self.download_button.disabled = not path
        if path:
            self.show(str(path))

    def show(self, path: str) -> None:
        """Preview a workspace file: text with its language, an image inline."""
        api = self._api()
        mime = image_mime_type(path)
        try:
            if mime is not None:
                data = api.read_bytes(self.session_id, path)
                if len(data) > _INLINE_IMAGE_BYTES:
                    self.preview.value = f"<i>{html.escape(path)}: image too large to show</i>"
                    return
                # an <img> even for SVG: inlined markup would run the agent's script
                self.preview.value = image_html(data, mime, path)
                return
            info = api.preview(self.session_id, path)
        except AgClusterClientError as exc:
            self._say(str(exc), error=True)
            return
        if info.get("binary"):
            self.preview.value = (
                f"<i>{html.escape(path)}: binary ({html.escape(str(info.get('mime_type')))}, "
                f"{format_bytes(int(info.get('size_bytes') or 0))}); use Download</i>"
            )
            return
        content = str(info.get("content", ""))
        more = "\n…" if info.get("truncated") or len(content) > _PREVIEW_CHARS else ""
        self.preview.value = (
            f"<b>{html.escape(path)}</b> · {html.escape(str(info.get('language') or 'text'))}"
            + text_html(
                content[:_PREVIEW_CHARS] + more,
                style="white-space: pre; max-height: 30em; overflow: auto",
            )
        )

    def download_selected(self) -> Path | None:
        path = self.files.value
        if not path:
            self._say("select a file first", error=True)
            return None
        try:
            data = self._api().read_bytes(self.session_id, str(path))
        except AgClusterClientError as exc:
            self._say(str(exc), error=True)
            return None
        target = free_name(self.download_folder, Path(str(path)).name)
        target.write_bytes(data)
        self._say(f"saved {target.name} next to the notebook ({format_bytes(len(data))})")
        return target

    def download_zip(self) -> Path | None:
        try:
            data = self._api().download(self.session_id)
        except AgClusterClientError as exc:
            self._say(str(exc), error=True)
            return None
        target = free_name(self.download_folder, f"workspace-{self.session_id[:8]}.zip")
        target.write_bytes(data)
        self._say(f"saved {target.name} next to the notebook ({format_bytes(len(data))})")
        return target

    def _uploaded(self, change: dict[str, Any]) -> None:
        files = change.get("new") or ()
        if not files:
            return
        contents = {str(f["name"]): bytes(f["content"]) for f in files}
        self.put(contents)
        self.upload.value = ()  # ready for the next pick

    def put(self, contents: dict[str, bytes]) -> bool:
        """Upload ``{filename: bytes}`` to the workspace root; False (and a message) if the
        server refused, e.g. because a file exists and Overwrite is not ticked."""
        try:
            done = self._api().upload(
                self.session_id, contents, overwrite=bool(self.overwrite.value)
            )
        except ApiError as exc:
            hint = "; tick Overwrite to replace it" if exc.status == 409 else ""
            self._say(f"{exc.message}{hint}", error=True)
            return False
        except AgClusterClientError as exc:
            self._say(str(exc), error=True)
            return False
        self.refresh()
        self._say(f"uploaded {', '.join(u['path'] for u in done)}")
        return True
