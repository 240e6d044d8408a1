"""The OpenAPI document: valid 3.1, covers every served route, matches what the API returns."""

from __future__ import annotations

import re
from fnmatch import fnmatchcase
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin

import jsonschema
import pytest
from openapi_spec_validator import validate
from starlette.routing import Route

from api.crud import ResourceRoute
from api.openapi.generator import openapi_path, route_methods, served_routes
from api.openapi.operations import OPERATIONS
from domain.incident_tickets import STATUSES, IncidentTicketIn
from realtime.endpoint import WS_PATH, RealtimeShortcut
from tests.builders.facilities import make_facility
from tests.builders.tickets import make_incident, make_incident_type

SCHEMA_URL = "/api/schema/"
DOCS_URL = "/api/docs/"
ERROR_STATUSES = {400, 401, 403, 404, 405, 409, 412, 413, 415, 429}


@pytest.fixture
async def document(client) -> dict[str, Any]:
    response = await client.get(SCHEMA_URL)  # anonymous: the document is public
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


def check(document: dict[str, Any], schema_name: str, instance: Any) -> None:
    """Validate a real response body against a component schema of the document."""
    root = {"$ref": f"#/components/schemas/{schema_name}", "components": document["components"]}
    jsonschema.Draft202012Validator(root).validate(instance)


def operation(document: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    return document["paths"][path][method.lower()]


def parameters(document: dict[str, Any], path: str) -> dict[str, dict[str, Any]]:
    """The GET parameters of `path` by name, with component references resolved."""
    found = {}
    for param in operation(document, path, "GET")["parameters"]:
        if "$ref" in param:
            param = document["components"]["parameters"][param["$ref"].rsplit("/", 1)[1]]
        found[param["name"]] = param
    return found


async def test_document_is_valid_openapi_3_1(document) -> None:
    assert document["openapi"] == "3.1.0"
    validate(document)


async def test_every_served_route_and_method_is_documented_or_405(app, document, login) -> None:
    admin = await login("admin")
    seen = 0
    for raw_path, route in served_routes(app.routes):
        path = openapi_path(raw_path)
        assert path in document["paths"], f"{path} is served but not documented"
        for method in sorted(route_methods(route)):
            seen += 1
            if method.lower() in document["paths"][path]:
                continue
            # Undocumented methods are those a route only refuses.
            assert isinstance(route, Route), (path, method)
            concrete = re.sub(r"\{\w+\}", "1", path)
            response = await admin.request(method, concrete)
            assert response.status_code == 405, f"{method} {path} is undocumented but answers"
    assert seen > 40


async def test_documented_paths_are_served(app, document) -> None:
    served = {openapi_path(raw) for raw, _ in served_routes(app.routes)}
    assert set(document["paths"]) == served


async def test_every_hand_written_entry_documents_a_served_route(app) -> None:
    """No stale entries: each one (or `*` pattern) matches a route the app serves."""
    served = {
        (openapi_path(raw), method)
        for raw, route in served_routes(app.routes)
        for method in route_methods(route)
    }
    # /ws/ is answered by the RealtimeShortcut middleware, before any route is matched.
    assert any(middleware.cls is RealtimeShortcut for middleware in app.user_middleware)
    served.add((WS_PATH, "GET"))
    for path, method in OPERATIONS:
        assert any(
            verb == method and fnmatchcase(served_path, path) for served_path, verb in served
        ), f"{method} {path} is documented but not served"


async def test_public_endpoints_need_no_credentials(document) -> None:
    assert operation(document, SCHEMA_URL, "GET")["security"] == []
    assert operation(document, DOCS_URL, "GET")["security"] == []
    assert operation(document, "/api/auth/token/", "POST")["security"] == []
    assert "security" not in operation(document, "/api/incident-tickets/", "GET")
    assert {"bearerAuth": []} in document["security"]


async def test_every_resource_documents_exactly_its_representation(app, document) -> None:
    """The output schema lists the same fields the serializer writes."""

    class AnyRow(dict):
        def __missing__(self, key: str) -> None:
            return None

    resources = {
        route.resource.path: route.resource
        for _, route in served_routes(app.routes)
        if isinstance(route, ResourceRoute)
    }
    assert len(resources) >= 8
    for resource in resources.values():
        assert resource.doc is not None, f"{resource.path} has no ResourceDoc"
        detail = openapi_path(f"/api{resource.path}/{{id}}/")
        schema = operation(document, detail, "GET")["responses"]["200"]["content"]
        name = schema["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
        properties = document["components"]["schemas"][name]["properties"]
        assert set(properties) == set(resource.serialize(AnyRow())), resource.path


async def test_input_schemas_are_the_domain_validation_schemas(document) -> None:
    schemas = document["components"]["schemas"]
    expected = IncidentTicketIn.model_json_schema(ref_template="#/components/schemas/{model}")
    assert schemas["IncidentTicketIn"] == {**expected, "title": "IncidentTicketIn"}
    body = operation(document, "/api/incident-tickets/", "POST")["requestBody"]
    assert body["content"]["application/json"]["schema"]["$ref"].endswith("/IncidentTicketIn")
    patch = operation(document, "/api/incident-tickets/{id}/", "PATCH")["requestBody"]
    patched = patch["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert "required" not in schemas[patched]
    assert schemas["ProfileCreate"]["properties"]["password"]["writeOnly"] is True
    assert "password" not in schemas["Profile"]["properties"]
    assert schemas["IncidentTicket"]["properties"]["number"]["readOnly"] is True
    assert "recurrence" in schemas["ShiftCreate"]["properties"]


async def test_list_parameters_describe_filters_search_ordering_and_pages(document) -> None:
    params = parameters(document, "/api/incident-tickets/")
    status = params["status"]
    assert status["schema"] == {
        "type": "array",
        "items": {"type": "string", "enum": list(STATUSES)},
    }
    assert (status["style"], status["explode"]) == ("form", False)  # comma-separated: any of
    assert params["facility"]["schema"]["items"] == {"type": "integer"}
    assert params["on_air_impact"]["schema"]["items"] == {"type": "boolean"}
    assert params["created_after"]["schema"] == {"type": "string", "format": "date-time"}
    assert "on or after" in params["created_after"]["description"]
    assert "on or before" in params["created_before"]["description"]
    assert "-priority" in params["ordering"]["schema"]["items"]["enum"]
    assert "`-created_at`" in params["ordering"]["description"]
    assert "`title`" in params["search"]["description"]
    assert params["page_size"]["schema"]["maximum"] == 200
    assert params["format"]["schema"]["enum"] == ["csv"]
    due = parameters(document, "/api/service-tickets/")["due_before"]
    assert due["schema"] == {"type": "string", "format": "date"}
    assert "search" not in parameters(document, "/api/incident-tickets/{id}/history/")


async def test_error_shapes_are_documented(document) -> None:
    responses = document["components"]["responses"]
    by_status = {
        int(status): ref["$ref"].rsplit("/", 1)[1]
        for path_item in document["paths"].values()
        for op in path_item.values()
        for status, ref in op["responses"].items()
        if "$ref" in ref
    }
    assert ERROR_STATUSES - {405} <= set(by_status)
    assert "MethodNotAllowed" in responses
    assert "Retry-After" in responses["Throttled"]["headers"]
    update = operation(document, "/api/incident-tickets/{id}/", "PATCH")["responses"]
    assert {"400", "401", "403", "404", "412", "415"} <= set(update)
    check(document, "ValidationErrors", {"title": ["This field is required."]})
    check(document, "Error", {"detail": "Not found."})


async def test_real_responses_match_the_document(document, login, client) -> None:
    manager = await login("manager")
    facility = await make_facility(manager)
    check(document, "Facility", facility)
    location = (await manager.get(f"/api/locations/{facility['location']}/")).json()
    check(document, "Location", location)
    kind = await make_incident_type(manager)
    check(document, "IncidentType", kind)
    ticket = await make_incident(manager, incident_type=kind["id"], facility=facility["id"])
    check(document, "IncidentTicket", ticket)
    moved = await manager.patch(
        f"/api/incident-tickets/{ticket['id']}/", json={"status": "acknowledged"}
    )
    check(document, "IncidentTicket", moved.json())
    page = (await manager.get("/api/incident-tickets/?status=acknowledged,open")).json()
    assert page["count"] == 1
    for item in page["results"]:
        check(document, "IncidentTicket", item)
    check(document, "CurrentUser", (await manager.get("/api/auth/user/")).json())
    history = (await manager.get(f"/api/incident-tickets/{ticket['id']}/history/")).json()
    check(document, "HistoryEntry", history["results"][0])
    bad = await manager.post("/api/incident-tickets/", json={})
    assert bad.status_code == 400
    check(document, "ValidationErrors", bad.json())
    check(document, "Error", (await client.get("/api/auth/user/")).json())
    with pytest.raises(jsonschema.ValidationError):
        check(document, "IncidentTicket", {**ticket, "status": "bogus"})


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in {"src", "href"} and value]


async def test_docs_page_uses_local_assets_only(client) -> None:
    response = await client.get(DOCS_URL)  # anonymous: the docs are public
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert not re.search(r"https?:|[\"']//", page)  # nothing remote, not even a CDN
    links = _Links()
    links.feed(page)
    assert any(url.endswith("swagger-ui-bundle.js") for url in links.urls)
    for url in links.urls:
        assert not re.match(r"^([a-z]+:)?//", url), url
        asset = await client.get(urljoin(f"http://testserver{DOCS_URL}", url))
        assert asset.status_code == 200, url
        assert asset.content
    schema_url = re.search(r'url: "([^"]+)"', page)
    assert schema_url is not None
    assert urljoin(DOCS_URL, schema_url.group(1)) == SCHEMA_URL


async def test_unknown_asset_is_404(client) -> None:
    assert (await client.get("/api/docs/assets/nope.js")).status_code == 404
