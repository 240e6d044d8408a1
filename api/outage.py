"""Answer 503 with Retry-After, not 500, when the database connection was lost mid-request
or SQLite's write lock stayed taken (by another process) past the busy timeout."""

from __future__ import annotations

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.responses import send_error
from db.errors import is_connection_lost, is_database_busy

log = structlog.get_logger("bms.api")

# A cut connection is replaced within a pool round trip; a restarting server takes seconds.
DATABASE_RETRY_AFTER_SECS = 2


class DatabaseUnavailableMiddleware:
    """A request whose connection the server ended (restart, failover, pg_terminate_backend)
    may well succeed when repeated: say so with 503 and Retry-After, and log one line.

    The store has already discarded the dead connection (db/store.py). Sits inside CORS, so
    a browser can read the answer, and outside authentication, which reads the database too.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            busy = is_database_busy(exc)
            if started or not (busy or is_connection_lost(exc)):
                raise
            log.warning(
                "database busy; answered 503" if busy else "database connection lost; answered 503",
                path=scope["path"],
                request_id=scope.get("state", {}).get("request_id"),
                error=f"{type(exc).__name__}: {exc}",
            )
            await send_error(
                tracking_send,
                "The database is unavailable; try again shortly.",
                503,
                headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECS)},
            )
