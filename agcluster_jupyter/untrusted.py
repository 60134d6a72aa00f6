"""Untrusted content: the one place where what an agent says or writes becomes HTML.

A model's reply is steered by whatever the agent reads (a file in the workspace, a web
page, a dataset's column names), so assistant text, thinking, tool inputs and outputs,
task names, file names, file contents and images are hostile input.  Script in the
user's Jupyter page acts with the user's credentials, outside the container; so every
surface that shows agent content as HTML (the notebook widget, a ``%%agent`` cell's
outputs, the saved snapshot, the exported notebook) builds it here:

- :func:`markdown_html`: Markdown to HTML with raw HTML shown *as text* (markdown-it-py
  with ``html`` off); links kept only for ``http(s)`` targets, with
  ``rel="noopener noreferrer"``; images turned into links (a remote image loads by
  itself: the user's browser would carry data out of a container that has no network);
  then nh3 (Ammonia) with a short allow-list, a second wall behind the first.
- :func:`markdown_cell_source`: the same HTML as a notebook Markdown cell's source, for
  exported conversations.
- :func:`text_html`: text in a ``<pre>``, escaped.
- :func:`image_html`: an ``<img>`` from a ``data:`` URI.  An SVG is only ever shown this
  way: inside ``<img>`` it runs no script and loads nothing.
- :func:`html_output`: a ``display_data`` output of that HTML and its plain text, never
  ``text/markdown``: a trusted output renders Markdown's raw HTML unsanitized (JupyterLab
  for outputs of the running session and signed notebooks, nbconvert always).

The notebook signature rule that goes with it (a signature never covers agent output)
lives in :mod:`agcluster_jupyter.signing`.
"""

from __future__ import annotations

import base64
import functools
import html
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Any

import nh3
from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict

__all__ = [
    "IMAGE_MIME_TYPES",
    "IMAGE_SUFFIXES",
    "MARKER_KEY",
    "details_html",
    "html_output",
    "image_html",
    "image_mime_type",
    "markdown_cell_source",
    "markdown_html",
    "safe_href",
    "text_html",
]

#: the ``metadata`` key of every output agcluster writes (and of an exported notebook):
#: how the notebook signer knows a notebook holds agent content
MARKER_KEY = "agcluster"

#: the workspace images shown inline, by suffix: what an ``<img>`` may claim to be
_IMAGE_SUFFIXES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".svg": "image/svg+xml",
    ".webp": "image/webp",
}
IMAGE_MIME_TYPES = frozenset(_IMAGE_SUFFIXES.values())
IMAGE_SUFFIXES = tuple(_IMAGE_SUFFIXES)


def image_mime_type(path: str) -> str | None:
    """The image type a workspace path is shown as inline, by its suffix; None if none."""
    return _IMAGE_SUFFIXES.get(PurePosixPath(path).suffix.lower())


_TAGS = {
    "p", "br", "hr", "em", "strong", "s", "del", "code", "pre", "blockquote",
    "ul", "ol", "li", "a", "h1", "h2", "h3", "h4", "h5", "h6",
    "table", "thead", "tbody", "tr", "th", "td", "span", "div", "details", "summary",
}  # fmt: skip
_ATTRIBUTES = {
    "a": {"href", "title"},
    "ol": {"start"},
    "th": {"style"},
    "td": {"style"},
}


def safe_href(url: str) -> str | None:
    """``url`` when a link to it is safe to show (an absolute http or https URL)."""
    candidate = url.strip()
    scheme, sep, rest = candidate.partition(":")
    if sep and scheme.lower() in ("http", "https") and rest.startswith("//") and len(rest) > 2:
        return candidate
    return None


class _Renderer(RendererHTML):
    """markdown-it's HTML renderer, with links opened apart and images as links."""

    def link_open(
        self, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
    ) -> str:
        token = tokens[idx]
        token.attrSet("target", "_blank")
        token.attrSet("rel", "noopener noreferrer")
        return self.renderToken(tokens, idx, options, env)

    def image(self, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType) -> str:
        token = tokens[idx]
        alt = self.renderInlineAsText(token.children or [], options, env) or "image"
        href = safe_href(str(token.attrGet("src") or ""))
        label = html.escape(f"[image: {alt}]")
        if href is None:
            return label
        return (
            f'<a href="{html.escape(href)}" target="_blank" rel="noopener noreferrer">{label}</a>'
        )


def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    md.renderer = _Renderer(md)
    # links other than http(s) stay text: markdown-it shows the bracket syntax as written
    md.validateLink = lambda url: safe_href(url) is not None  # type: ignore[method-assign]
    return md


_MARKDOWN = _parser()


_CLEANER = nh3.Cleaner(
    tags=_TAGS,
    clean_content_tags={"script", "style"},
    attributes=_ATTRIBUTES,
    url_schemes={"http", "https"},
    link_rel="noopener noreferrer",
    set_tag_attribute_values={"a": {"target": "_blank"}},
    filter_style_properties={"text-align"},
    url_relative="deny",
)


@functools.lru_cache(maxsize=2048)
def markdown_html(text: str) -> str:
    """Agent Markdown as sanitized HTML (raw HTML in it shows as text)."""
    return _CLEANER.clean(_MARKDOWN.render(text))


def markdown_cell_source(text: str) -> str:
    """Agent Markdown as the source of a notebook's Markdown cell: the sanitized HTML of
    :func:`markdown_html`, so it renders the same (and as safely) in JupyterLab trusted or
    not, nbconvert and GitHub, whichever Markdown parser reads it.

    A blank line would end CommonMark's HTML block and hand the rest to the parser as
    Markdown; blank lines only occur inside ``<pre>``, where ``&#10;`` is the same
    newline."""
    return markdown_html(text).replace("\n\n", "\n&#10;")


def details_html(summary: str, body_html: str) -> str:
    """A collapsed ``<details>`` around ``body_html``, the whole sanitized (the summary is
    text)."""
    return _CLEANER.clean(
        f"<details><summary>{html.escape(summary)}</summary>{body_html}</details>"
    ).replace("\n\n", "\n&#10;")


def text_html(text: str, *, limit: int | None = None, style: str = "") -> str:
    """Text as an escaped ``<pre>``, cut at ``limit`` characters with a note."""
    if limit is not None and len(text) > limit:
        text = text[:limit] + f"\n… ({len(text) - limit} more characters)"
    attribute = f' style="{html.escape(style)}"' if style else ""
    return f"<pre{attribute}>{html.escape(text)}</pre>"


def image_html(data: bytes, mime_type: str, alt: str, *, style: str = "max-width: 100%") -> str:
    """An ``<img>`` of ``data`` from a ``data:`` URI; ValueError for a type not in
    :data:`IMAGE_MIME_TYPES`."""
    if mime_type not in IMAGE_MIME_TYPES:
        raise ValueError(f"not an image type shown inline: {mime_type!r}")
    encoded = base64.b64encode(data).decode("ascii")
    return (
        f'<img src="data:{mime_type};base64,{encoded}" alt="{html.escape(alt)}" '
        f'style="{html.escape(style)}">'
    )


def html_output(
    html_text: str, plain_text: str, metadata: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A ``display_data`` output (nbformat) of sanitized HTML and its plain text, marked as
    agent content."""
    return {
        "output_type": "display_data",
        "data": {"text/html": html_text, "text/plain": plain_text},
        "metadata": {MARKER_KEY: dict(metadata or {})},
    }
