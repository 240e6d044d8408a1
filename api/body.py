"""Reading request bodies: JSON only (415 otherwise), and always an object."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request

from domain.errors import BadRequest, ValidationFailed


async def read_json(request: Request) -> dict[str, Any]:
    """Return the body as a dict; 415 for other media types, 400 for bad JSON."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if not body and not media_type:
        return {}
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise HTTPException(415, f'Unsupported media type "{media_type}" in request.')
    try:
        data = orjson.loads(body) if body else {}
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"JSON parse error - {exc}") from None
    if not isinstance(data, dict):
        kind = type(data).__name__
        raise ValidationFailed.on(
            "non_field_errors", f"Invalid data. Expected a dictionary, but got {kind}."
        )
    return data
