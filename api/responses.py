"""JSON responses rendered with orjson, the same encoder the events use."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.responses import Response
from starlette.types import Send

from db.types import dumps
from domain.schemas import etag_of_json


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content)


def error_response(
    detail: str, status_code: int, *, headers: Mapping[str, str] | None = None, **extra: Any
) -> JSONResponse:
    """The one JSON error body, `{"detail": ...}` in DRF's shape (also an ASGI app, so
    middleware answers with `await error_response(...)(scope, receive, send)`)."""
    return JSONResponse({"detail": detail, **extra}, status_code, headers=headers)


async def send_error(
    send: Send, detail: str, status_code: int, *, headers: Mapping[str, str] | None = None
) -> None:
    """Answer from ASGI middleware, before any route ran, with the same error body."""
    response = error_response(detail, status_code, headers=headers)
    await send(
        {"type": "http.response.start", "status": status_code, "headers": response.raw_headers}
    )
    await send({"type": "http.response.body", "body": response.body})


def detail_response(representation: dict[str, Any], status_code: int = 200) -> Response:
    """A detail representation with its ETag, both from one rendering of the JSON."""
    body = dumps(representation)
    return Response(
        body, status_code, headers={"ETag": etag_of_json(body)}, media_type=JSONResponse.media_type
    )


def no_content() -> Response:
    return Response(status_code=204)
