"""The REST + SSE API under ``{base_url}api/agcluster/``: one route table."""

from __future__ import annotations

from typing import Any

from .agents import AGENT_ROUTES, NotFoundHandler
from .base import AUTH_RESOURCE, AgClusterHandler
from .files import FILE_ROUTES

__all__ = ["API_PREFIX", "AUTH_RESOURCE", "AgClusterHandler", "route_table"]

API_PREFIX = "api/agcluster/"


def route_table(kwargs: dict[str, Any]) -> list[tuple[str, type[AgClusterHandler], dict[str, Any]]]:
    """Every route, relative to the server's base URL, with the shared services as kwargs."""
    routes: list[tuple[str, type[AgClusterHandler]]] = [
        *AGENT_ROUTES,
        *FILE_ROUTES,
        (r"(?P<path>.*)", NotFoundHandler),
    ]
    return [(API_PREFIX + pattern, handler, kwargs) for pattern, handler in routes]
