"""JSON responses rendered with orjson, the same encoder the events use."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from db.types import dumps
from domain.schemas import etag_of


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content)


def detail_response(representation: dict[str, Any], status_code: int = 200) -> JSONResponse:
    """A detail representation with its ETag."""
    return JSONResponse(representation, status_code, headers={"ETag": etag_of(representation)})


def no_content() -> Response:
    return Response(status_code=204)
