"""Which upstream calls the gateway lends the user's key to: an allow-list of routes.

The bundled claude CLI needs exactly ``POST /v1/messages?beta=true`` (every model turn)
and, for some features, ``POST /v1/messages/count_tokens``: that is the default.  Any
other method, path or query parameter is refused before anything goes upstream, so an
agent that calls its own ``ANTHROPIC_BASE_URL`` cannot reach the Files, Batches, Models
or admin APIs with the user's key.

A route is written ``METHOD /path`` with an optional ``?name,name`` of the query
parameters it may carry (``POST /v1/messages?beta``).  Paths are compared exactly as
sent, before any decoding, and the URL that goes upstream is built from the route's own
path, so ``/v1/messages/../files``, ``//v1/files`` or ``%2e%2e`` never match anything.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

__all__ = ["DEFAULT_ROUTES", "Refused", "Route", "RoutePolicy", "parse_route"]

#: what the bundled claude CLI calls (read from the requests it makes)
DEFAULT_ROUTES = ("POST /v1/messages?beta", "POST /v1/messages/count_tokens?beta")

_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
_PATH = re.compile(r"^(/[A-Za-z0-9_\-.~]+)+$")
_NAME = re.compile(r"^[A-Za-z0-9_\-.]+$")


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    #: the query parameters it may carry
    query: frozenset[str] = frozenset()

    @property
    def metered(self) -> bool:
        """Whether its responses cost tokens (``count_tokens`` is free)."""
        return not self.path.endswith("/count_tokens")

    def __str__(self) -> str:
        query = f"?{','.join(sorted(self.query))}" if self.query else ""
        return f"{self.method} {self.path}{query}"


class Refused(Exception):
    """A request no route allows; ``str()`` says what, for the agent and the user."""


def parse_route(text: str) -> Route:
    """``"POST /v1/messages?beta"`` → a Route; ValueError saying what is wrong."""
    method, _, rest = text.strip().partition(" ")
    method = method.upper()
    if method not in _METHODS:
        raise ValueError(f"{text!r}: the method must be one of {', '.join(_METHODS)}")
    path, _, query = rest.strip().partition("?")
    if not _PATH.match(path) or any(part in (".", "..") for part in path.split("/")):
        raise ValueError(f"{text!r}: the path must be like /v1/messages (no .., no //)")
    names = frozenset(n.strip() for n in query.split(",") if n.strip())
    bad = sorted(n for n in names if not _NAME.match(n))
    if bad:
        raise ValueError(f"{text!r}: bad query parameter names {bad}")
    return Route(method, path, names)


class RoutePolicy:
    """The allowed routes; ``check`` finds the route of a request or refuses it."""

    def __init__(self, routes: Iterable[str | Route] = DEFAULT_ROUTES) -> None:
        self.routes = {
            (r.method, r.path): r
            for r in (x if isinstance(x, Route) else parse_route(x) for x in routes)
        }

    def check(self, method: str, raw_path: str, raw_query: str) -> tuple[Route, str]:
        """The route and the query to send upstream, or :class:`Refused`."""
        route = self.routes.get((method.upper(), raw_path))
        if route is None:
            raise Refused(f"not allowed through the agcluster gateway: {method} {raw_path}")
        try:
            pairs = parse_qsl(raw_query, keep_blank_values=True, strict_parsing=bool(raw_query))
        except ValueError:
            raise Refused(
                f"not allowed through the agcluster gateway: {method} {raw_path}?{raw_query}"
            ) from None
        extra = sorted({name for name, _ in pairs} - route.query)
        if extra:
            raise Refused(
                f"not allowed through the agcluster gateway: {method} {raw_path} "
                f"with query parameter {', '.join(extra)}"
            )
        return route, urlencode(pairs)  # re-encoded: only what was parsed goes on
