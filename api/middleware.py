"""ASGI middleware: request ids and access lines, the body size limit, and request metrics."""

from __future__ import annotations

import logging
import random
import re
import time
from typing import Any

import structlog
from prometheus_client import Counter, Histogram
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.responses import send_error

MAX_BODY_BYTES = 1024 * 1024
IMAGE_MAX_BODY_BYTES = 4 * 1024 * 1024
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
access_log = structlog.get_logger("bms.access")
_access_lines = logging.getLogger("bms.access")  # the stdlib logger behind it: its level

REQUESTS = Counter(
    "bms_http_requests_total", "HTTP requests by route and status", ["method", "route", "status"]
)
LATENCY = Histogram(
    "bms_http_request_duration_seconds",
    "HTTP request latency by route",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


class RequestIdMiddleware:
    """Echo a sane `X-Request-ID` or make one; bind it to the log context; log the access line.

    The id is bound with structlog's contextvars, so every line logged while the request runs
    (and every task it enqueues: tasks.logcontext) carries it. The access line replaces
    uvicorn's: same stream, same format, with the user id once authentication resolved one
    (secrets in the path are redacted by the log configuration, bms.logs).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = _header(scope, b"x-request-id").decode("latin-1")
        # A fresh id needs to be unique, not secret: 128 random bits from the process's
        # generator, as a uuid4's hex, without reading the OS's random source per request.
        request_id = given if _REQUEST_ID.match(given) else f"{random.getrandbits(128):032x}"
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        header = (b"x-request-id", request_id.encode())
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                if _access_lines.isEnabledFor(logging.INFO):  # else structlog builds, drops
                    actor = state.get("actor")
                    access_log.info(
                        "request",
                        method=scope["method"],
                        path=_path_of(scope),
                        status=status,
                        duration_ms=round((time.perf_counter() - started) * 1000, 1),
                        user_id=getattr(actor, "id", None),
                        client=_client_of(scope),
                    )


def _header(scope: Scope, name: bytes) -> bytes:
    """The last value of header `name` (lower case), as `dict(scope["headers"])` gives it,
    without copying every header into a dict."""
    found = b""
    for key, value in scope["headers"]:
        if key == name:
            found = value
    return found


def _path_of(scope: Scope) -> str:
    query = scope.get("query_string", b"")
    return f"{scope['path']}?{query.decode('latin-1')}" if query else scope["path"]


def _client_of(scope: Scope) -> str | None:
    client = scope.get("client")
    return client[0] if client else None


class BodyLimitMiddleware:
    """Refuse bodies over the limit with 413, whether declared or streamed."""

    def __init__(self, app: ASGIApp, *, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _limit_for(self, scope: Scope) -> int:
        # The image upload endpoint has its own, larger limit.
        return IMAGE_MAX_BODY_BYTES if scope["path"].endswith("/image/") else self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit_for(scope)
        declared = _header(scope, b"content-length")
        if declared.isdigit() and int(declared) > limit:
            await _too_large(send, limit)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge()
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await _too_large(send, limit)


class _BodyTooLarge(Exception):
    pass


async def _too_large(send: Send, limit: int) -> None:
    detail = f"Request body is too large (limit {limit // (1024 * 1024)} MiB)."
    await send_error(send, detail, 413)


class MetricsMiddleware:
    """Count requests and time them, labelled by route template (not raw path)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # Each labelled series once per (method, route[, status]): `labels()` takes a lock
        # and builds its key on every call. Bounded: routes are templates, not paths.
        self._latency: dict[tuple[str, str], Any] = {}
        self._requests: dict[tuple[str, str, int], Any] = {}

    @staticmethod
    def _route_of(scope: Scope) -> str:
        """The template of the route that handled the request, mounts included.

        Routers record the route they picked in `scope["route"]` (the innermost one wins)
        and a mount extends `root_path`; a mount left as the route matched nothing in it.
        """
        route = scope.get("route")
        path = getattr(route, "path", None)
        if path is None or isinstance(route, Mount):
            return "unmatched"
        mounted_at = scope.get("root_path", "")[len(scope.get("app_root_path", "")) :]
        return mounted_at + path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            elapsed = time.perf_counter() - started
            route, method = self._route_of(scope), scope["method"]
            latency = self._latency.get((method, route))
            if latency is None:
                latency = self._latency[method, route] = LATENCY.labels(method, route)
            latency.observe(elapsed)
            requests = self._requests.get((method, route, status))
            if requests is None:
                requests = REQUESTS.labels(method, route, str(status))
                self._requests[method, route, status] = requests
            requests.inc()
