"""Security headers on every HTTP response (contract 5): no MIME sniffing, no framing, no
referrer to other sites, HSTS behind HTTPS. A response that set a header keeps its own value
(the wall and the docs page send their own Content-Security-Policy)."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# JSON and plain pages: nothing may frame them; other directives are the page's own business.
DEFAULT_CSP = "frame-ancestors 'none'"
HSTS = "max-age=31536000"  # one year; only sent when COOKIE_SECURE says BMS is behind HTTPS
BASE_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
    ("Content-Security-Policy", DEFAULT_CSP),
)


class SecurityHeadersMiddleware:
    """Add the headers a response lacks; never override one a route chose."""

    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        chosen = (*BASE_HEADERS, ("Strict-Transport-Security", HSTS)) if hsts else BASE_HEADERS
        # Raw ASGI pairs, encoded once: every response is checked against all of them.
        self.headers = tuple((name.lower().encode(), value.encode()) for name, value in chosen)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = _with_defaults(message.get("headers", ()), self.headers)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _with_defaults(
    headers: Iterable[tuple[bytes, bytes]], defaults: tuple[tuple[bytes, bytes], ...]
) -> list[tuple[bytes, bytes]]:
    """`headers` plus each default whose name it lacks (ASGI names are lower case)."""
    merged = list(headers)
    present = {name.lower() for name, _ in merged}
    merged.extend(pair for pair in defaults if pair[0] not in present)
    return merged
