"""The REST + SSE API under ``{base_url}api/agcluster/``: one route table."""

from __future__ import annotations

from typing import Any

from .agents import AGENT_ROUTES, NotFoundHandler
from .base import AUTH_RESOURCE, AgClusterHandler, HandlerContext
from .checkpoints import CHECKPOINT_ROUTES
from .files import FILE_ROUTES
from .notebooks import NOTEBOOK_ROUTES

__all__ = ["API_PREFIX", "AUTH_RESOURCE", "AgClusterHandler", "HandlerContext", "route_table"]

API_PREFIX = "api/agcluster/"


def route_table(
    ctx: HandlerContext | None,
) -> list[tuple[str, type[AgClusterHandler], dict[str, Any]]]:
    """Every route, relative to the server's base URL, each handler given ``ctx``
    (None: the table alone, for tools that only read its patterns)."""
    routes: list[tuple[str, type[AgClusterHandler]]] = [
        *AGENT_ROUTES,
        *FILE_ROUTES,
        *CHECKPOINT_ROUTES,
        *NOTEBOOK_ROUTES,
        (r"(?P<path>.*)", NotFoundHandler),
    ]
    kwargs = {"ctx": ctx} if ctx is not None else {}
    return [(API_PREFIX + pattern, handler, kwargs) for pattern, handler in routes]
