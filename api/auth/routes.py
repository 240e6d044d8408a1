"""/api/csrf/ and /api/auth/*: sessions for browsers, bearer tokens for scripts."""

from __future__ import annotations

import secrets
from typing import Protocol

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.auth.limits import client_ip, login_limits
from api.auth.middleware import CSRF_COOKIE
from api.body import read_json
from api.context import get_store, require_actor
from api.responses import JSONResponse, no_content
from domain import sessions, tokens
from domain.auth import authenticate
from domain.errors import AuthenticationFailed, NotAuthenticated, ValidationFailed
from domain.users import current_user_object, get_profile_by_user

CSRF_COOKIE_MAX_AGE_SECS = 365 * 24 * 3600


class CredentialSettings(Protocol):
    """What these routes read of the settings the app factory put on `app.state`."""

    cookie_secure: bool
    session_ttl_secs: int
    access_token_ttl_secs: int
    refresh_token_ttl_secs: int


def _settings(request: Request) -> CredentialSettings:
    settings: CredentialSettings = request.app.state.settings
    return settings


def set_csrf_cookie(response: Response, settings: CredentialSettings, token: str) -> None:
    response.set_cookie(
        CSRF_COOKIE,
        token,
        max_age=CSRF_COOKIE_MAX_AGE_SECS,
        samesite="lax",
        secure=settings.cookie_secure,
        httponly=False,  # the dashboard reads it to send X-CSRFToken
    )


async def csrf(request: Request) -> Response:
    token = request.state.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(32)
    response = JSONResponse({"csrfToken": token})
    set_csrf_cookie(response, _settings(request), token)
    return response


async def _user_object(request: Request, user_id: int) -> dict:
    async with get_store(request).connection() as conn:
        profile = await get_profile_by_user(conn, user_id=user_id)
    if profile is None:
        raise NotAuthenticated()
    return current_user_object(profile)


async def login(request: Request) -> Response:
    settings = _settings(request)
    store = get_store(request)
    data = await read_json(request)
    user_id = await authenticate(
        store, data, client_ip=client_ip(request), limits=login_limits(request)
    )
    old_key = request.state.cookies.get(sessions.SESSION_COOKIE)
    async with store.unit_of_work(actor_id=user_id) as uow:
        if old_key:  # never keep a session id chosen before login (fixation)
            await sessions.destroy_session(uow, key_hash=sessions.hash_key(old_key))
        key = await sessions.create_session(
            uow, user_id=user_id, ttl_secs=settings.session_ttl_secs
        )
    response = JSONResponse(await _user_object(request, user_id))
    response.set_cookie(
        sessions.SESSION_COOKIE,
        key,
        max_age=settings.session_ttl_secs,
        httponly=True,
        samesite="lax",
        secure=settings.cookie_secure,
    )
    set_csrf_cookie(response, settings, secrets.token_urlsafe(32))  # rotate, as Django does
    return response


async def logout(request: Request) -> Response:
    actor = require_actor(request)
    store = get_store(request)
    async with store.unit_of_work(actor_id=actor.id) as uow:
        if actor.via == "session" and actor.credential_id:
            await sessions.destroy_session(uow, key_hash=actor.credential_id)
        elif actor.via == "token" and actor.credential_id:
            await tokens.revoke_family(uow, jti=actor.credential_id)
    response = no_content()
    response.delete_cookie(sessions.SESSION_COOKIE, samesite="lax")
    return response


async def current_user(request: Request) -> Response:
    actor = require_actor(request)
    return JSONResponse(await _user_object(request, actor.id))


async def obtain_token(request: Request) -> Response:
    settings = _settings(request)
    store = get_store(request)
    data = await read_json(request)
    user_id = await authenticate(
        store, data, client_ip=client_ip(request), limits=login_limits(request), for_token=True
    )
    async with store.unit_of_work(actor_id=user_id) as uow:
        pair = await tokens.issue_token_pair(
            uow,
            user_id=user_id,
            secret_key=request.app.state.secret_key,
            access_ttl_secs=settings.access_token_ttl_secs,
            refresh_ttl_secs=settings.refresh_token_ttl_secs,
        )
    return JSONResponse(pair)


async def refresh_token(request: Request) -> Response:
    """Rotate: a new access and refresh token; the presented refresh token is retired."""
    settings = _settings(request)
    data = await read_json(request)
    refresh = data.get("refresh")
    if not isinstance(refresh, str) or not refresh:
        raise ValidationFailed.on("refresh", "This field is required.")
    async with get_store(request).unit_of_work(actor_id=None) as uow:
        pair = await tokens.rotate_refresh_token(
            uow,
            refresh_token=refresh,
            secret_key=request.app.state.secret_key,
            access_ttl_secs=settings.access_token_ttl_secs,
            refresh_ttl_secs=settings.refresh_token_ttl_secs,
        )
    if pair is None:  # after the commit: a replay's family revocation must stand
        raise AuthenticationFailed("Token is invalid or expired.")
    return JSONResponse(pair)


routes = [
    Route("/csrf/", csrf, methods=["GET"]),
    Route("/auth/login/", login, methods=["POST"]),
    Route("/auth/logout/", logout, methods=["POST"]),
    Route("/auth/user/", current_user, methods=["GET"]),
    Route("/auth/token/", obtain_token, methods=["POST"]),
    Route("/auth/token/refresh/", refresh_token, methods=["POST"]),
]
