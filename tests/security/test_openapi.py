"""``agcluster_jupyter/openapi.yaml``: a valid OpenAPI 3.1 document that describes exactly
the routes and methods the handlers serve, with the error answers they give."""

from __future__ import annotations

from typing import Any

import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator

from .openapi_support import load_spec, path_parameters, routes, spec_operations


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return load_spec()


def test_the_spec_is_valid_openapi_3_1(spec: dict[str, Any]) -> None:
    assert spec["openapi"].startswith("3.1")
    errors = [e.message for e in OpenAPIV31SpecValidator(spec).iter_errors()]
    assert errors == []


def test_every_route_is_documented_with_its_methods_and_nothing_else(
    spec: dict[str, Any],
) -> None:
    served = {r.template: r.methods for r in routes()}
    documented = spec_operations(spec)
    undocumented = {p: sorted(m) for p, m in served.items() if p not in documented}
    assert not undocumented, f"routes missing from openapi.yaml: {undocumented}"
    stale = sorted(set(documented) - set(served))
    assert not stale, f"openapi.yaml documents paths no handler serves: {stale}"
    wrong = {
        p: {"handler": sorted(served[p]), "spec": sorted(documented[p])}
        for p in served
        if served[p] != documented[p]
    }
    assert not wrong, f"methods differ between the handlers and openapi.yaml: {wrong}"
    assert len(served) >= 15  # the derivation found the whole table, not a stub


def test_path_parameters_match_the_route_groups(spec: dict[str, Any]) -> None:
    for route in routes():
        for method in route.methods:
            params = path_parameters(spec, route.template, method)
            assert set(params) == {name for name, _ in route.groups}, (route.template, method)
            for name, group in route.groups:
                schema = params[name]["schema"]
                if "pattern" in schema:
                    # the spec may leave a pattern out (`path`: any), never contradict one
                    assert schema["pattern"] == f"^{group}$", (route.template, name)


def test_every_operation_documents_its_errors(spec: dict[str, Any]) -> None:
    error_ref = "#/components/schemas/Error"
    for route in routes():
        for method in route.methods:
            operation = spec["paths"][route.template][method]
            statuses = set(operation["responses"])
            where = f"{method.upper()} {route.template}"
            assert {"401", "403"} <= statuses, where
            assert any(s.startswith("2") for s in statuses), where
            if any(name in ("session_id", "config_id") for name, _ in route.groups):
                assert "404" in statuses, where
            if "requestBody" in operation:
                assert "400" in statuses, where
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    name = response["$ref"].rsplit("/", 1)[-1]
                    body = spec["components"]["responses"][name]["content"]
                    assert body["application/json"]["schema"]["$ref"] == error_ref, where


def test_sse_and_multipart_operations_are_described_as_such(spec: dict[str, Any]) -> None:
    paths = spec["paths"]
    assert (
        "text/event-stream"
        in paths["/agents/{session_id}/events"]["get"]["responses"]["200"]["content"]
    )
    chat = paths["/agents/{session_id}/chat"]["post"]["responses"]["200"]["content"]
    assert {"application/json", "text/event-stream"} <= set(chat)
    upload = paths["/files/{session_id}/upload"]["post"]["requestBody"]["content"]
    assert set(upload) == {"multipart/form-data"}
    assert "files" in upload["multipart/form-data"]["schema"]["required"]


def test_the_error_statuses_of_the_contract_are_all_described(spec: dict[str, Any]) -> None:
    used = {
        status
        for item in spec["paths"].values()
        for key, operation in item.items()
        if key != "parameters"
        for status in operation["responses"]
    }
    assert {"400", "401", "403", "404", "409", "413", "429", "503"} <= used
    assert spec["components"]["securitySchemes"]["jupyterToken"]["name"] == "Authorization"
    assert spec["servers"][0]["url"] == "/api/agcluster"


def test_the_derivation_notices_an_undocumented_handler(
    spec: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A guard on the guard: a new route without docs makes the comparison fail."""
    from agcluster_jupyter.handlers import agents

    class ExtraHandler(agents.HealthHandler):
        async def delete(self) -> None:  # pragma: no cover - never served
            raise NotImplementedError

    import agcluster_jupyter.handlers as handlers

    # the table is defined in handlers.agents; route_table reads the package's binding
    extended = [*agents.AGENT_ROUTES, (r"extra/(?P<thing>[a-z]+)/?", ExtraHandler)]
    monkeypatch.setattr(handlers, "AGENT_ROUTES", extended)
    served = {r.template: r.methods for r in routes()}
    assert served["/extra/{thing}"] == {"get", "delete"}
    assert "/extra/{thing}" not in spec_operations(spec)
