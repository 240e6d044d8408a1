"""Resolve the acting user (bearer token or session cookie) and enforce CSRF and origins."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from datetime import datetime
from http.cookies import SimpleCookie

from databases.core import Connection
from starlette.datastructures import State
from starlette.types import ASGIApp, Receive, Scope, Send

from api.auth.credential_cache import CredentialCache
from api.responses import send_error
from db.store import Store
from domain.actors import Actor
from domain.bearer import actor_for_bearer
from domain.origins import is_trusted_origin
from domain.sessions import SESSION_COOKIE, actor_for_session_key

CSRF_COOKIE = "csrftoken"
CSRF_HEADER = b"x-csrftoken"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS", "TRACE"}
# Endpoints that check CSRF even without a session (Django checks login too).
CSRF_ALWAYS_PATHS = {"/api/auth/login/"}


def parse_cookies(raw: str) -> dict[str, str]:
    if not raw:  # scripts and screens send none: no parser for nothing
        return {}
    cookie = SimpleCookie()
    try:
        cookie.load(raw)
    except Exception:
        return {}
    return {key: morsel.value for key, morsel in cookie.items()}


async def _forbidden(send: Send, detail: str, status: int = 403) -> None:
    headers = {"WWW-Authenticate": 'Bearer realm="api"'} if status == 401 else None
    await send_error(send, detail, status, headers=headers)


async def _actor(
    app_state: State,
    kind: str,
    credential: str,
    now: datetime,
    read: Callable[[Connection], Awaitable[Actor | None]],
) -> Actor | None:
    """The actor behind a credential: this process's cache, else `read` from the database."""
    cache: CredentialCache = app_state.credential_cache
    actor = cache.lookup(kind, credential, now=now)
    if actor is None:
        ticket = cache.ticket()
        store: Store = app_state.store
        async with store.connection() as conn:
            actor = await read(conn)
        if actor is not None:
            cache.store(kind, credential, actor, ticket)
    return actor


class AuthMiddleware:
    """Put `actor` (or None) and `auth_error` in the request state; refuse bad CSRF with 403."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state["actor"] = None
        app_state = scope["app"].state
        store: Store = app_state.store
        headers = dict(scope["headers"])
        cookies = parse_cookies(headers.get(b"cookie", b"").decode("latin-1"))
        state["cookies"] = cookies
        authorization = headers.get(b"authorization", b"").decode("latin-1")
        now = store.clock()
        if authorization:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                await _forbidden(
                    send, "Invalid Authorization header (expected: Bearer <token>).", 401
                )
                return
            token = token.strip()
            actor = await _actor(
                app_state,
                "bearer",
                token,
                now,
                lambda conn: actor_for_bearer(
                    conn, token=token, secret_key=app_state.secret_key, now=now
                ),
            )
            if actor is None:
                await _forbidden(send, "Given token not valid for any token type", 401)
                return
            if actor.read_only and scope["method"] not in SAFE_METHODS:
                await _forbidden(send, "This API key is read-only (scope: read).")
                return
            state["actor"] = actor
            await self.app(scope, receive, send)
            return
        session_key = cookies.get(SESSION_COOKIE)
        if session_key:
            state["actor"] = await _actor(
                app_state,
                "session",
                session_key,
                now,
                lambda conn: actor_for_session_key(conn, key=session_key, now=now),
            )
        needs_csrf = scope["method"] not in SAFE_METHODS and (
            state["actor"] is not None or scope["path"] in CSRF_ALWAYS_PATHS
        )
        if needs_csrf:
            problem = self._csrf_problem(scope, headers, cookies)
            if problem:
                await _forbidden(send, f"CSRF Failed: {problem}")
                return
        await self.app(scope, receive, send)

    def _csrf_problem(
        self, scope: Scope, headers: dict[bytes, bytes], cookies: dict[str, str]
    ) -> str | None:
        origin = headers.get(b"origin", b"").decode("latin-1")
        allowed = scope["app"].state.settings.allowed_origins
        host = headers.get(b"host", b"").decode("latin-1")
        if origin and not is_trusted_origin(origin, host=host, allowed=allowed):
            return f"Origin checking failed - {origin} does not match any trusted origins."
        cookie_token = cookies.get(CSRF_COOKIE)
        if not cookie_token:
            return "CSRF cookie not set."
        header_token = headers.get(CSRF_HEADER, b"").decode("latin-1")
        if not header_token:
            return "CSRF token missing."
        if not hmac.compare_digest(header_token.encode(), cookie_token.encode()):
            return "CSRF token incorrect."
        return None
