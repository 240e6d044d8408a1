"""Build the OpenAPI 3.1 document from the app's routing table and the domain schemas."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, create_model
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute

from api.crud import Resource, ResourceRoute
from api.listing import Filter, ListSpec
from api.openapi import shapes
from api.openapi.components import (
    ERRORS,
    error_components,
    header_components,
    parameter_components,
)
from api.openapi.meta import ResourceDoc
from api.openapi.operations import Body, Operation, find_operation
from api.openapi.shapes import REF, ref

OPENAPI_VERSION = "3.1.0"
API_VERSION = "1"
_PARAM = re.compile(r"\{(\w+)(?::(\w+))?\}")
_ALWAYS_READ_ONLY = {"id": int, "created_at": datetime, "updated_at": datetime}
_SUFFIXES = ("In", "Patch", "Input")

DESCRIPTION = """\
The Broadcast Management System REST API, with Django REST Framework's conventions.

* JSON in and out (UTF-8); another body type on an unsafe request: 415; bodies over 1 MiB: 413.
* Paths end in a slash; ids are integers; foreign keys are read and written as ids.
* Datetimes are ISO 8601 with an offset (naive input: 400) and are returned in UTC; dates
  are `YYYY-MM-DD`. Unknown and read-only fields in input are ignored.
* Detail responses carry an `ETag`; `If-Match` that does not match on PUT/PATCH/DELETE: 412.
* Workflow moves are a PATCH of `status`: a forbidden move is 400 on `status`, a move the
  role may not make is 403.
* Lists are paginated (`?page=`, `?page_size=` up to 200), filtered (`?field=a,b` means any
  of), searched (`?search=`) and ordered (`?ordering=-field,other`; ties break on `-id`).
* Errors: 400 `{"field": ["message"]}` (`non_field_errors` for the body as a whole);
  every other error `{"detail": "..."}`, 429 with `Retry-After`; 500 carries a `request_id`.
  Every response has an `X-Request-ID` header (echoed when the request sent one).
* Authentication: a bearer token (`POST /api/auth/token/`) or a session cookie from
  `POST /api/auth/login/`; session requests send `X-CSRFToken` on unsafe methods.
  Roles: viewer < operator < manager < admin; a denied action is 403.
* Realtime events: the WebSocket at `/ws/` (see that operation).
* This document (`/api/schema/`) and its viewer (`/api/docs/`) are public.
"""


_FILTER_TYPES: dict[str, dict[str, Any]] = {
    "int": {"type": "integer"},
    "bool": {"type": "boolean"},
    "str": {"type": "string"},
    "date": {"type": "string", "format": "date"},
    "datetime": {"type": "string", "format": "date-time"},
}


def openapi_path(path: str) -> str:
    """`/api/shifts/{id:int}/` → `/api/shifts/{id}/`."""
    return _PARAM.sub(r"{\1}", path)


def served_routes(routes: Sequence[BaseRoute], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(full path, route) for every route, recursing into mounts; a static mount ends `{path}`."""
    for route in routes:
        if isinstance(route, Mount):
            inner = route.routes
            if inner:
                yield from served_routes(inner, prefix + route.path)
            else:
                yield prefix + route.path + "/{path}", route
        elif isinstance(route, Route | WebSocketRoute):
            yield prefix + route.path, route


def route_methods(route: Any) -> set[str]:
    """The methods a route answers (a WebSocket's handshake counts as GET)."""
    if isinstance(route, Route):
        return set(route.methods or ()) - {"HEAD"}
    return {"GET"}


def _schema_name(model: type[BaseModel]) -> str:
    name = model.__name__
    for suffix in _SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


class DocumentBuilder:
    """Collects paths and components while walking the routes."""

    def __init__(self) -> None:
        self.schemas: dict[str, dict[str, Any]] = copy.deepcopy(shapes.SCHEMAS)
        self.paths: dict[str, dict[str, Any]] = {}
        self.tags: dict[str, None] = {}
        self.param_types: dict[str, dict[str, str]] = {}  # path → {param: convertor name}

    # -- schemas -----------------------------------------------------------------------------

    def model(self, model: type[BaseModel], *, name: str | None = None, mode: str = "validation"):
        """Register a pydantic model (and its nested definitions); return a $ref to it."""
        name = name or model.__name__
        if name not in self.schemas:
            # pydantic types `mode` as a Literal; ours is a plain str of the same values.
            schema = model.model_json_schema(ref_template=REF, mode=mode)  # type: ignore[arg-type]
            for def_name, definition in schema.pop("$defs", {}).items():
                self.schemas.setdefault(def_name, definition)
            schema["title"] = name
            self.schemas[name] = schema
        return ref(name)

    def body(self, body: Body) -> dict[str, Any] | None:
        if body is None:
            return None
        if isinstance(body, dict):
            return body
        return self.model(body)

    def resource_schemas(self, doc: ResourceDoc) -> dict[str, dict[str, Any]]:
        """$refs of a resource's output, create, update (PUT) and partial update bodies."""
        out_name = _schema_name(doc.input)
        update = self.model(doc.input)
        create_model_ = doc.create or doc.input
        if doc.create_only:
            extra = {key: (kind, None) for key, kind in doc.create_only.items()}
            create_model_ = create_model(  # type: ignore[call-overload]  # fields built at runtime
                f"{out_name}Create", __base__=create_model_, **extra
            )
        create = self.model(create_model_)
        for name in doc.write_only:
            prop = self.schemas[create["$ref"].rsplit("/", 1)[1]]["properties"].get(name)
            if prop is not None:
                prop["writeOnly"] = True
        patched_name = f"Patched{out_name}"
        if patched_name not in self.schemas:
            patched = copy.deepcopy(self.schemas[update["$ref"].rsplit("/", 1)[1]])
            patched.pop("required", None)
            patched["title"] = patched_name
            self.schemas[patched_name] = patched
        return {
            "output": self.output_model(doc, out_name),
            "create": create,
            "update": update,
            "patch": ref(patched_name),
        }

    def output_model(self, doc: ResourceDoc, name: str) -> dict[str, Any]:
        """The representation: input fields (typed as in output) plus the read-only ones."""
        if name in self.schemas:
            return ref(name)
        fields: dict[str, Any] = {"id": (int, ...)}
        for field_name, info in doc.input.model_fields.items():
            if field_name not in doc.write_only:
                kind = doc.output_types.get(field_name, info.annotation)
                fields[field_name] = (kind, ...)
        read_only = {**doc.read_only, "created_at": datetime, "updated_at": datetime}
        for field_name, kind in read_only.items():
            fields[field_name] = (kind, ...)
        output = create_model(name, **fields)
        self.model(output, name=name, mode="serialization")
        properties = self.schemas[name]["properties"]
        for field_name in {*_ALWAYS_READ_ONLY, *doc.read_only}:
            properties[field_name]["readOnly"] = True
        if doc.description:
            self.schemas[name]["description"] = doc.description
        return ref(name)

    # -- operations --------------------------------------------------------------------------

    def add(self, path: str, method: str, operation: dict[str, Any], tag: str) -> None:
        self.tags.setdefault(tag, None)
        operation["tags"] = [tag]
        slug = re.sub(r"[^a-z0-9]+", "_", f"{method} {path}".lower()).strip("_")
        operation["operationId"] = slug
        params = _path_parameters(path, self.param_types.get(path, {}))
        if params:
            operation["parameters"] = [*params, *operation.get("parameters", [])]
        self.paths.setdefault(path, {})[method.lower()] = operation

    def resource(self, path: str, route: ResourceRoute) -> None:
        resource = route.resource
        tag = _tag_of(path)
        schemas = self.resource_schemas(resource.doc) if resource.doc else None
        output = schemas["output"] if schemas else {"type": "object"}
        if route.detail:
            ops = _detail_operations(resource, output, schemas, tag)
        else:
            ops = _collection_operations(resource, output, schemas, tag)
        for method, operation in ops.items():
            if resource.doc and resource.doc.description:
                operation.setdefault("description", resource.doc.description)
            self.add(path, method, operation, tag)

    def hand_written(self, path: str, method: str, entry: Operation) -> None:
        operation: dict[str, Any] = {"summary": entry.summary}
        if entry.description:
            operation["description"] = entry.description
        if entry.public:
            operation["security"] = []
        if entry.paged:
            operation["parameters"] = [
                *_page_parameters(),
                _ordering_parameter(entry.ordering, ("id",)),
            ]
        request = self.body(entry.request)
        if request is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {entry.request_media_type: {"schema": request}},
            }
        response = self.body(entry.response)
        if entry.paged and response is not None:
            response = shapes.page_of(response)
        operation["responses"] = {
            str(entry.status): _success(entry.status, response, entry.media_type),
            # Under /api/ a bearer token that is sent and not valid is 401, public or not.
            **_errors((*entry.errors, 401) if path.startswith("/api/") else entry.errors),
        }
        self.add(path, method, operation, entry.tag or _tag_of(path))

    def document(self) -> dict[str, Any]:
        return {
            "openapi": OPENAPI_VERSION,
            "info": {"title": "BMS API", "version": API_VERSION, "description": DESCRIPTION},
            "tags": [{"name": tag} for tag in sorted(self.tags)],
            "paths": dict(sorted(self.paths.items())),
            "security": [{"bearerAuth": []}, {"sessionCookie": []}],
            "components": {
                "schemas": dict(sorted(self.schemas.items())),
                "responses": error_components(),
                "parameters": parameter_components(),
                "headers": header_components(),
                "securitySchemes": {
                    "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                    "sessionCookie": {
                        "type": "apiKey",
                        "in": "cookie",
                        "name": "sessionid",
                        "description": "Browser session; unsafe methods also need the "
                        "`X-CSRFToken` header equal to the `csrftoken` cookie.",
                    },
                },
            },
        }


def build_document(routes: Sequence[BaseRoute]) -> dict[str, Any]:
    """The OpenAPI document of every served route that is a Resource or has an entry."""
    builder = DocumentBuilder()
    for raw_path, route in served_routes(routes):
        path = openapi_path(raw_path)
        builder.param_types[path] = {m[0]: m[1] or "str" for m in _PARAM.findall(raw_path)}
        if isinstance(route, ResourceRoute):
            builder.resource(path, route)
            continue
        for method in sorted(route_methods(route)):
            entry = find_operation(path, method)
            if entry is not None:
                builder.hand_written(path, method, entry)
    return builder.document()


# -- pieces of operations --------------------------------------------------------------------


def _tag_of(path: str) -> str:
    parts = [p for p in path.split("/") if p and p != "api" and not p.startswith("{")]
    return parts[0] if parts else "api"


def _path_parameters(path: str, convertors: dict[str, str]) -> list[dict[str, Any]]:
    types = {"int": {"type": "integer"}, "float": {"type": "number"}}
    return [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": types.get(convertors.get(name, "str"), {"type": "string"}),
        }
        for name in re.findall(r"\{(\w+)\}", path)
    ]


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _success(
    status: int,
    schema: dict[str, Any] | None,
    media_type: str = "application/json",
    *,
    etag: bool = False,
) -> dict[str, Any]:
    descriptions = {
        200: "OK",
        201: "Created",
        202: "Accepted",
        204: "No content",
        101: "Switching protocols",
    }
    response: dict[str, Any] = {"description": descriptions.get(status, "OK")}
    headers = {"X-Request-ID": {"$ref": "#/components/headers/X-Request-ID"}}
    if etag:
        headers["ETag"] = {"$ref": "#/components/headers/ETag"}
    if status != 101:
        response["headers"] = headers
    if schema is not None:
        response["content"] = {media_type: {"schema": schema}}
    return response


def _errors(statuses: Sequence[int]) -> dict[str, Any]:
    return {
        str(status): {"$ref": f"#/components/responses/{ERRORS[status][0]}"}
        for status in sorted({*statuses, 500})
    }


def _page_parameters() -> list[dict[str, Any]]:
    return [
        {"$ref": "#/components/parameters/Page"},
        {"$ref": "#/components/parameters/PageSize"},
    ]


def _ordering_parameter(fields: Sequence[str], default: Sequence[str]) -> dict[str, Any]:
    choices = [variant for name in fields for variant in (name, f"-{name}")]
    return {
        "name": "ordering",
        "in": "query",
        "required": False,
        "style": "form",
        "explode": False,
        "description": "Sort by these fields, comma-separated; `-` for descending; unknown "
        f"fields are ignored. Default: `{','.join(default) or 'id'}`; ties break on `-id`.",
        "schema": {"type": "array", "items": {"type": "string", "enum": choices}},
    }


def filter_parameter(spec: Filter) -> dict[str, Any]:
    """A list filter as a query parameter: its type, choices, and any-of or range meaning."""
    item = dict(_FILTER_TYPES.get(spec.kind, {"type": "string"}))
    if spec.kind == "choice":
        item = {"type": "string", "enum": list(spec.choices)}
    column = getattr(spec.column, "name", spec.name)
    parameter: dict[str, Any] = {"name": spec.name, "in": "query", "required": False}
    if spec.op == "eq":
        parameter.update(
            style="form",
            explode=False,
            schema={"type": "array", "items": item},
            description="Exact match; comma-separated values mean any of.",
        )
    else:
        bound = "on or after" if spec.op == "gte" else "on or before"
        parameter.update(schema=item, description=f"`{column}` {bound} this value (inclusive).")
    return parameter


def list_parameters(resource: Resource) -> list[dict[str, Any]]:
    spec: ListSpec = resource.spec
    params: list[dict[str, Any]] = [*_page_parameters()]
    params += [filter_parameter(f) for f in spec.filters]
    if spec.search:
        names = ", ".join(f"`{getattr(col, 'name', col)}`" for col in spec.search)
        params.append(
            {
                "name": "search",
                "in": "query",
                "required": False,
                "schema": {"type": "string"},
                "description": f"Case-insensitive substring match over {names}.",
            }
        )
    params.append(_ordering_parameter(list(spec.ordering), spec.default_ordering))
    if resource.csv:
        params.append(
            {
                "name": "format",
                "in": "query",
                "required": False,
                "schema": {"type": "string", "enum": ["csv"]},
                "description": "`csv`: the whole filtered, ordered list as CSV (no pages).",
            }
        )
    return params


def _collection_operations(
    resource: Resource, output: dict[str, Any], schemas: dict[str, Any] | None, tag: str
) -> dict[str, dict[str, Any]]:
    page = _success(200, shapes.page_of(output))
    if resource.csv:
        page["content"]["text/csv"] = {"schema": {"type": "string"}}
    ops: dict[str, dict[str, Any]] = {
        "GET": {
            "summary": f"List {tag}",
            "parameters": list_parameters(resource),
            "responses": {"200": page, **_errors((400, 401, 404))},
        }
    }
    if resource.create is not None:
        body = schemas["create"] if schemas else {"type": "object"}
        ops["POST"] = {
            "summary": f"Create in {tag}",
            "requestBody": {"required": True, "content": _json(body)},
            "responses": {
                "201": _success(201, output, etag=True),
                **_errors((400, 401, 403, 409, 413, 415)),
            },
        }
    return ops


def _detail_operations(
    resource: Resource, output: dict[str, Any], schemas: dict[str, Any] | None, tag: str
) -> dict[str, dict[str, Any]]:
    if_match = {"$ref": "#/components/parameters/IfMatch"}
    ops: dict[str, dict[str, Any]] = {
        "GET": {
            "summary": f"Read one of {tag}",
            "responses": {"200": _success(200, output, etag=True), **_errors((401, 404))},
        }
    }
    if resource.update is not None:
        for method, key, verb in (("PUT", "update", "Replace"), ("PATCH", "patch", "Update")):
            body = schemas[key] if schemas else {"type": "object"}
            ops[method] = {
                "summary": f"{verb} one of {tag}",
                "parameters": [if_match],
                "requestBody": {"required": True, "content": _json(body)},
                "responses": {
                    "200": _success(200, output, etag=True),
                    **_errors((400, 401, 403, 404, 409, 412, 413, 415)),
                },
            }
    if resource.delete is not None:
        ops["DELETE"] = {
            "summary": f"Delete one of {tag}",
            "parameters": [if_match],
            "responses": {"204": _success(204, None), **_errors((401, 403, 404, 409, 412))},
        }
    return ops
