"""Hand-written entries for the routes that are not a crud.Resource, keyed by path and method.

Paths are OpenAPI paths (`{id}`); `*` matches any run of characters, so one entry can cover
the same nested route under several resources. Only routes the app serves are documented.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from pydantic import BaseModel

from api.openapi.shapes import ref
from domain.auth import Credentials
from domain.comments import CommentIn
from domain.emails import EmailIn

Body = type[BaseModel] | dict[str, Any] | None


@dataclass(frozen=True)
class Operation:
    """One documented method of a hand-written route."""

    summary: str
    response: Body = None  # None: no body
    status: int = 200
    request: Body = None
    errors: tuple[int, ...] = ()
    public: bool = False
    description: str = ""
    media_type: str = "application/json"  # of the success response
    request_media_type: str = "application/json"
    paged: bool = False  # takes ?page=, ?page_size=, ?ordering= (see `ordering`)
    ordering: tuple[str, ...] = ()
    tag: str | None = None  # default: the path's first segment


_UNSAFE = (401, 403, 413, 415)
_THREAD_ORDERING = ("id", "created_at")

OPERATIONS: Mapping[tuple[str, str], Operation] = {
    ("/api/csrf/", "GET"): Operation(
        "Get a CSRF token",
        ref("CsrfToken"),
        public=True,
        tag="auth",
        description="Sets the `csrftoken` cookie; send its value as `X-CSRFToken` on unsafe "
        "session requests (login included).",
    ),
    ("/api/auth/login/", "POST"): Operation(
        "Log in (session)",
        ref("CurrentUser"),
        request=Credentials,
        errors=(400, 403, 413, 415, 429),
        public=True,
        description="Sets the `sessionid` cookie (HttpOnly, SameSite=Lax) and rotates "
        "`csrftoken`. Needs `X-CSRFToken`. Bad credentials: 400. More than 5 failures for a "
        "username or 50 from one address within 15 minutes: 429 with `Retry-After`.",
    ),
    ("/api/auth/logout/", "POST"): Operation(
        "Log out",
        status=204,
        errors=(401, 403),
        description="Ends the session, or revokes the bearer token used, server-side.",
    ),
    ("/api/auth/user/", "GET"): Operation("The current user", ref("CurrentUser"), errors=(401,)),
    ("/api/auth/token/", "POST"): Operation(
        "Obtain a bearer token pair",
        ref("TokenPair"),
        request=Credentials,
        errors=(400, 401, 413, 415, 429),
        public=True,
        description="JWT access and refresh tokens (simplejwt shape). Bad credentials: 401.",
    ),
    ("/api/auth/token/refresh/", "POST"): Operation(
        "Rotate a refresh token",
        ref("TokenPair"),
        request=ref("RefreshIn"),
        errors=(400, 401, 413, 415),
        public=True,
        description="Returns a new access and refresh token; the refresh token sent is "
        "retired. A revoked, expired or retired refresh token: 401, and a retired one "
        "presented again revokes every token of its login (reuse detection).",
    ),
    ("/api/notifications/mark-all-read/", "POST"): Operation(
        "Mark all own notifications read", status=204, errors=(401, 403)
    ),
    ("/api/away/", "GET"): Operation(
        "Who is away on a day (names only)",
        {
            "type": "object",
            "properties": {
                "count": {"type": "integer"},
                "next": {"type": "null"},
                "previous": {"type": "null"},
                "results": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"user": {"type": "integer"}, "name": {"type": "string"}},
                    },
                },
            },
        },
        errors=(400, 401),
        tag="time-off-requests",
        description="Approved time off covering `?date=` (default: today, UTC), optionally of "
        "one site's people (`?location=`). Any signed-in user, a wall's read key too: the names "
        "only, never the kind or reason (time-off requests themselves stay private).",
    ),
    ("/api/send-email/", "POST"): Operation(
        "Queue an email",
        ref("EmailQueued"),
        status=202,
        request=EmailIn,
        errors=(400, *_UNSAFE),
        tag="emails",
        description="Managers and admins. A worker sends it after commit, retrying with backoff.",
    ),
    ("/api/emails/{id}/", "GET"): Operation(
        "An email's delivery status", ref("EmailStatus"), errors=(401, 403, 404)
    ),
    ("/api/calendar/{token}.ics", "GET"): Operation(
        "A calendar feed (iCalendar)",
        {"type": "string", "contentMediaType": "text/calendar"},
        media_type="text/calendar",
        errors=(404,),
        public=True,
        tag="calendar-feeds",
        description="The secret URL from POST /api/calendar-feeds/ is the credential: a user's "
        "own shifts and events, or one facility's (managers). Revoked or unknown: 404.",
    ),
    ("/api/*/{id}/comments/", "GET"): Operation(
        "List a ticket's comments (oldest first)",
        ref("Comment"),
        errors=(401, 404),
        paged=True,
        ordering=_THREAD_ORDERING,
    ),
    ("/api/*/{id}/comments/", "POST"): Operation(
        "Comment on a ticket",
        ref("Comment"),
        status=201,
        request=CommentIn,
        errors=(400, *_UNSAFE, 404),
        description="Operators and up.",
    ),
    ("/api/*/{id}/history/", "GET"): Operation(
        "List a ticket's history (oldest first)",
        ref("HistoryEntry"),
        errors=(401, 404),
        paged=True,
        ordering=("id", "at"),
        description="One entry per change: `changes` maps each field to [old, new].",
    ),
    ("/api/profiles/{id}/image/", "POST"): Operation(
        "Upload a profile image",
        ref("Profile"),
        request=ref("ImageUpload"),
        request_media_type="multipart/form-data",
        errors=(400, *_UNSAFE, 404),
        description="The owner or an admin. Multipart field `image`: PNG, JPEG or WebP, at "
        "most 2 MiB (this endpoint's own limit), checked by content, not by name.",
    ),
    ("/media/profile-images/{name}", "GET"): Operation(
        "A stored profile image",
        {"type": "string", "contentMediaType": "image/*"},
        media_type="image/*",
        errors=(404,),
        public=True,
        tag="profiles",
    ),
    ("/api/schema/", "GET"): Operation(
        "This OpenAPI 3.1 document",
        {"type": "object"},
        public=True,
        tag="docs",
        description="Public (no authentication).",
    ),
    ("/api/docs/", "GET"): Operation(
        "Interactive API documentation (Swagger UI)",
        {"type": "string"},
        media_type="text/html",
        public=True,
        description="Public (no authentication); its assets are served locally.",
    ),
    ("/api/docs/assets/{path}", "GET"): Operation(
        "Swagger UI static assets",
        {"type": "string"},
        media_type="application/octet-stream",
        errors=(404,),
        public=True,
        tag="docs",
    ),
    ("/", "GET"): Operation(
        "Where to go: the API docs and the wall",
        {"type": "string"},
        media_type="text/html",
        public=True,
        tag="web",
        description="A small HTML page linking /api/docs/ and /wall/.",
    ),
    ("/wall/", "GET"): Operation(
        "The control-room wall display",
        {"type": "string"},
        media_type="text/html",
        public=True,
        tag="web",
        description="HTML (strict CSP, revalidated each load). Open it as `/wall/#key=<API key>`: "
        "the fragment never reaches the server; the page keeps the key in local storage. URL "
        "parameters: `location`, `panels`, `rotate`, `tz`, `theme=light` (docs/wall.md).",
    ),
    ("/static/bms-realtime.js", "GET"): Operation(
        "The browser client for /ws/ (ES module)",
        {"type": "string"},
        media_type="text/javascript",
        public=True,
        tag="web",
        description="Stable URL, revalidated each load (docs/browser-client.md).",
    ),
    ("/static/v/{version}/{name}", "GET"): Operation(
        "A versioned browser asset",
        {"type": "string"},
        media_type="application/octet-stream",
        errors=(404,),
        public=True,
        tag="web",
        description="Cached for a year (`immutable`) when `version` is this release's; another "
        "version gets today's file, not cached.",
    ),
    ("/healthz", "GET"): Operation(
        "Liveness", ref("Health"), public=True, tag="operations", description="Always 200."
    ),
    ("/readyz", "GET"): Operation(
        "Readiness",
        ref("Readiness"),
        public=True,
        tag="operations",
        description="200 only when the database and (if configured) Redis answer; else 503 "
        "with the same shape.",
    ),
    ("/metrics", "GET"): Operation(
        "Prometheus metrics",
        {"type": "string"},
        media_type="text/plain",
        public=True,
        tag="operations",
    ),
    ("/ws/", "GET"): Operation(
        "Realtime events (WebSocket)",
        status=101,
        errors=(403, 426),
        tag="realtime",
        description=(
            "Upgrade to a WebSocket. Authenticate with the session cookie (the `Origin` must be "
            "allowed) or a bearer token (`Authorization` header or `?token=`); otherwise the "
            "handshake is refused (403) or the socket closed with 4401. A plain HTTP GET "
            "(no `Upgrade: websocket`) is 426.\n\n"
            "Client → server JSON frames: `subscribe` `{topics, since?, filter?}`, "
            "`unsubscribe` `{topics}`, `ping`. Server → client: `welcome`, `subscribed`, "
            "`event` `{id, topic, action: created|updated|deleted, data, at}` (`data` is the "
            "REST detail representation; `{id}` for deletes), `pong`, `error`, "
            "`resync_required`. Event ids increase in commit order; `since` (exclusive) "
            "replays without gap or duplicate. Slow clients are closed with 4008; a stopping "
            "server closes with 1001 or 1012. Topics: the resource names "
            "(`incident-tickets`, `shifts`, ..., `notifications`)."
        ),
    ),
}


def find_operation(path: str, method: str) -> Operation | None:
    """The entry for an OpenAPI path and method: exact key first, then `*` patterns."""
    found = OPERATIONS.get((path, method))
    if found is not None:
        return found
    for (pattern, verb), operation in OPERATIONS.items():
        if verb == method and "*" in pattern and fnmatchcase(path, pattern):
            return operation
    return None
