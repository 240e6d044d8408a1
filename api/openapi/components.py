"""Reusable OpenAPI components: the error responses, list and precondition parameters, headers."""

from __future__ import annotations

from typing import Any

from api.listing import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from api.openapi.shapes import ref

# status → (component name, description); each body is Error unless said otherwise.
ERRORS: dict[int, tuple[str, str]] = {
    400: ("BadRequest", "Validation failed (messages by field) or the body was not valid JSON."),
    401: ("NotAuthenticated", "No valid credentials."),
    403: ("PermissionDenied", "The role may not do this, or CSRF / origin checks failed."),
    404: ("NotFound", "No such object (or not visible to the caller), or an invalid page."),
    405: ("MethodNotAllowed", 'The path exists but not this method: `Method "X" not allowed.`'),
    409: ("Conflict", "Conflicts with other data (an overlap, a row still referenced)."),
    412: ("PreconditionFailed", "`If-Match` names another version; nothing changed."),
    413: ("PayloadTooLarge", "The body is over the limit."),
    415: ("UnsupportedMediaType", "The body is not JSON (or not multipart where required)."),
    426: ("UpgradeRequired", "A plain HTTP request to the WebSocket endpoint."),
    429: ("Throttled", "Too many attempts; retry after `Retry-After` seconds."),
    500: ("ServerError", "An unexpected error; quote the `request_id`."),
}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def error_components() -> dict[str, Any]:
    components: dict[str, Any] = {}
    for status, (name, description) in ERRORS.items():
        schema = ref("Error")
        if status == 400:
            schema = {"anyOf": [ref("ValidationErrors"), ref("Error")]}
        elif status == 500:
            schema = ref("ServerError")
        headers: dict[str, Any] = {"X-Request-ID": {"$ref": "#/components/headers/X-Request-ID"}}
        if status == 429:
            headers["Retry-After"] = {"$ref": "#/components/headers/Retry-After"}
        if status == 401:
            headers["WWW-Authenticate"] = {"schema": {"type": "string"}}
        components[name] = {
            "description": description,
            "headers": headers,
            "content": _json(schema),
        }
    return components


def parameter_components() -> dict[str, Any]:
    return {
        "Page": {
            "name": "page",
            "in": "query",
            "required": False,
            "description": "1-based page number; past the end: 404 `Invalid page.`",
            "schema": {"type": "integer", "minimum": 1, "default": 1},
        },
        "PageSize": {
            "name": "page_size",
            "in": "query",
            "required": False,
            "description": f"Results per page (larger values are clamped to {MAX_PAGE_SIZE}).",
            "schema": {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_PAGE_SIZE,
                "default": DEFAULT_PAGE_SIZE,
            },
        },
        "IfMatch": {
            "name": "If-Match",
            "in": "header",
            "required": False,
            "description": "The `ETag` last read; another version: 412 and nothing changes.",
            "schema": {"type": "string"},
        },
    }


def header_components() -> dict[str, Any]:
    return {
        "X-Request-ID": {
            "description": "The request's id (echoed when the request sent a sane one).",
            "schema": {"type": "string"},
        },
        "ETag": {"description": "Version of the representation.", "schema": {"type": "string"}},
        "Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}},
    }
