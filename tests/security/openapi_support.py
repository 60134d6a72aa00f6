"""The shipped OpenAPI description and the routes the handlers really serve, side by side.

Both sides are derived: the spec from ``agcluster_jupyter/openapi.yaml`` (read as package
data, as an installed wheel has it), the routes from the handlers' route table and the
methods each handler class implements.  A handler added without docs shows up here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

import yaml
from jupyter_server.base.handlers import APIHandler

from agcluster_jupyter.handlers import API_PREFIX, route_table
from agcluster_jupyter.handlers.agents import NotFoundHandler

__all__ = ["HTTP_METHODS", "Route", "load_spec", "routes", "spec_operations"]

HTTP_METHODS = ("get", "post", "put", "patch", "delete")
_GROUP = re.compile(r"\(\?P<(\w+)>([^)]*)\)")


@dataclass(frozen=True)
class Route:
    """One route: its OpenAPI path template, methods, handler and path-group regexes."""

    template: str
    methods: frozenset[str]
    handler: type
    groups: tuple[tuple[str, str], ...]
    regex: str


def load_spec() -> dict[str, Any]:
    text = (files("agcluster_jupyter") / "openapi.yaml").read_text(encoding="utf-8")
    spec: dict[str, Any] = yaml.safe_load(text)
    return spec


def implemented_methods(handler: type) -> frozenset[str]:
    """The HTTP methods a handler class defines itself (tornado answers 405 to others)."""
    return frozenset(m for m in HTTP_METHODS if getattr(handler, m) is not getattr(APIHandler, m))


def routes() -> list[Route]:
    """Every documented-worthy route of the extension (the JSON-404 catch-all excepted)."""
    out = []
    for pattern, handler, _ in route_table(None):
        if handler is NotFoundHandler:
            continue  # `(?P<path>.*)`: any other path is a JSON 404, said in the spec's intro
        assert pattern.startswith(API_PREFIX), pattern
        relative = pattern[len(API_PREFIX) :]
        relative = relative.removesuffix("/?")  # a trailing slash is optional everywhere
        template = "/" + _GROUP.sub(lambda m: "{" + m.group(1) + "}", relative)
        groups = tuple((m.group(1), m.group(2)) for m in _GROUP.finditer(relative))
        out.append(Route(template, implemented_methods(handler), handler, groups, pattern))
    return out


def spec_operations(spec: dict[str, Any]) -> dict[str, frozenset[str]]:
    """``{path template: methods}`` of the spec."""
    return {
        path: frozenset(m for m in item if m in HTTP_METHODS)
        for path, item in spec["paths"].items()
    }


def path_parameters(spec: dict[str, Any], path: str, method: str) -> dict[str, dict[str, Any]]:
    """The path parameters of one operation (path-level and operation-level), refs resolved."""
    item = spec["paths"][path]
    params = [*item.get("parameters", []), *item[method].get("parameters", [])]
    out = {}
    for param in params:
        if "$ref" in param:
            name = param["$ref"].rsplit("/", 1)[-1]
            param = spec["components"]["parameters"][name]
        if param["in"] == "path":
            out[param["name"]] = param
    return out
