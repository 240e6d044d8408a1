"""JSON Schemas for documentation only: error bodies, pages, and hand-written endpoint shapes."""

from __future__ import annotations

from typing import Any

REF = "#/components/schemas/{model}"


def ref(name: str) -> dict[str, Any]:
    return {"$ref": REF.format(model=name)}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def obj(properties: dict[str, Any], *, required: list[str] | None = None) -> dict[str, Any]:
    """An object schema; every property is required unless told otherwise."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
    }


def page_of(item: dict[str, Any]) -> dict[str, Any]:
    """DRF's page-number pagination envelope around `item`."""
    url = nullable({"type": "string", "format": "uri"})
    return obj(
        {
            "count": {"type": "integer", "minimum": 0},
            "next": {**url, "description": "Absolute URL of the next page, or null."},
            "previous": {**url, "description": "Absolute URL of the previous page, or null."},
            "results": {"type": "array", "items": item},
        }
    )


STRING = {"type": "string"}
INTEGER = {"type": "integer"}
DATETIME = {"type": "string", "format": "date-time"}

# Shapes shared by the hand-written operations; the resource schemas are generated.
SCHEMAS: dict[str, dict[str, Any]] = {
    "Error": {
        **obj({"detail": STRING}),
        "description": "Every error but validation: 401, 403, 404, 405, 409, 412, 413, 415, 429.",
    },
    "ValidationErrors": {
        "type": "object",
        "description": (
            "400: messages keyed by field (or by filter name for a bad query parameter); "
            "errors about the body as a whole under `non_field_errors`."
        ),
        "properties": {"non_field_errors": {"type": "array", "items": STRING}},
        "additionalProperties": {"type": "array", "items": STRING},
        "examples": [{"name": ["This field is required."]}],
    },
    "ServerError": obj({"detail": STRING, "request_id": STRING}),
    "CsrfToken": obj({"csrfToken": STRING}),
    "TokenPair": obj({"access": STRING, "refresh": STRING}),
    "RefreshIn": obj({"refresh": STRING}),
    "CurrentUser": obj(
        {
            "id": {**INTEGER, "description": "The user id (the profile's `user`)."},
            "username": STRING,
            "email": STRING,
            "first_name": STRING,
            "last_name": STRING,
            "role": {"type": "string", "enum": ["admin", "manager", "operator", "viewer"]},
            "is_active": {"type": "boolean"},
            "profile": ref("Profile"),
        }
    ),
    "Comment": obj(
        {
            "id": INTEGER,
            "author": {**INTEGER, "description": "User id."},
            "body": STRING,
            "created_at": DATETIME,
        }
    ),
    "HistoryEntry": obj(
        {
            "id": INTEGER,
            "actor": {**nullable(INTEGER), "description": "User id (null: the system)."},
            "at": DATETIME,
            "changes": {
                "type": "object",
                "description": "field → [old, new]",
                "additionalProperties": {"type": "array", "minItems": 2, "maxItems": 2},
            },
        }
    ),
    "EmailQueued": obj({"id": INTEGER, "status": {"type": "string", "const": "queued"}}),
    "EmailStatus": obj(
        {
            "id": INTEGER,
            "to": {"type": "array", "items": {"type": "string", "format": "email"}},
            "subject": STRING,
            "status": {"type": "string", "enum": ["queued", "sent", "failed"]},
            "attempts": INTEGER,
            "sent_at": nullable(DATETIME),
            "error": nullable(STRING),
        }
    ),
    "ImageUpload": {
        **obj({"image": {"type": "string", "contentMediaType": "application/octet-stream"}}),
        "description": "PNG, JPEG or WebP, at most 2 MiB, checked by content.",
    },
    "Health": obj({"status": STRING}),
    "Readiness": {
        **obj({"status": {"type": "string", "enum": ["ok", "unavailable"]}}),
        "additionalProperties": STRING,
        "description": "`status` plus one entry per check (`database`, `redis`): ok or error.",
    },
}
