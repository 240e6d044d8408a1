"""The one place domain errors become HTTP responses, in DRF's shapes."""

from __future__ import annotations

from typing import Any

import structlog
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ExceptionHandler

from api.responses import JSONResponse, error_response
from db.errors import ConstraintViolated
from domain import errors

log = structlog.get_logger("bms.api")

_STATUS: dict[type[errors.DomainError], int] = {
    errors.NotAuthenticated: 401,
    errors.AuthenticationFailed: 401,
    errors.PermissionDenied: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.PreconditionFailed: 412,
    errors.Throttled: 429,
    errors.ValidationFailed: 400,
    errors.BadRequest: 400,
}

_HTTP_DETAILS = {
    400: "Bad request.",
    401: "Authentication credentials were not provided.",
    403: "You do not have permission to perform this action.",
    404: "Not found.",
    413: "Request body is too large (limit 1 MiB).",
    415: "Unsupported media type.",
}


def status_for(error: errors.DomainError) -> int:
    for cls in type(error).__mro__:
        if cls in _STATUS:
            return _STATUS[cls]
    return 400


def domain_error_response(request: Request, exc: Exception) -> Response:
    if isinstance(exc, ConstraintViolated):  # a race past the domain's checks
        exc = errors.from_constraint(exc)
    assert isinstance(exc, errors.DomainError)
    status = status_for(exc)
    if isinstance(exc, errors.ValidationFailed):
        return JSONResponse(exc.errors, status)
    headers = {}
    if isinstance(exc, errors.Throttled):
        headers["Retry-After"] = str(exc.retry_after_secs)
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="api"'
    return error_response(exc.detail, status, headers=headers)


def http_error_response(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        detail = f'Method "{request.method}" not allowed.'
    else:
        detail = _HTTP_DETAILS.get(exc.status_code) or str(exc.detail)
    return error_response(detail, exc.status_code, headers=exc.headers)


async def server_error_response(request: Request, exc: Exception) -> Response:
    """500 with the request id; logged (and reported, bms.errortracking) with its context.

    Async so it runs in the request's task, not a worker thread: what it binds stays with
    the request, and the exception is passed explicitly (no `except` block is active here).
    """
    request_id = getattr(request.state, "request_id", None)
    # This handler runs outside the request-id middleware (Starlette's outermost layer):
    # bind again, for this line and for error tracking (bms.errortracking tags reports).
    structlog.contextvars.bind_contextvars(
        request_id=request_id,
        user_id=getattr(getattr(request.state, "actor", None), "id", None),
        method=request.method,
        path=request.url.path,
    )
    log.error("unhandled error", exc_info=exc)
    return error_response(
        "Internal server error.",
        500,
        headers={"X-Request-ID": request_id or ""},
        request_id=request_id,
    )


EXCEPTION_HANDLERS: dict[Any, ExceptionHandler] = {
    errors.DomainError: domain_error_response,
    ConstraintViolated: domain_error_response,
    HTTPException: http_error_response,
    Exception: server_error_response,
}
