"""The /ws/ endpoint: handshake and auth, then the client's subscribe/unsubscribe/ping loop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from domain.actors import Actor
from domain.bearer import actor_for_bearer
from domain.limits import EVENT_ID_MAX
from realtime.auth import accepted_subprotocol, authenticate
from realtime.connection import CLOSE_UNAUTHORIZED, Connection
from realtime.hub import Hub
from realtime.visibility import TOPICS, BadFilter, EventFilter, FilterParsers

logger = logging.getLogger("bms.realtime.endpoint")

MAX_MESSAGE_CHARS = 64 * 1024
WS_PATH = "/ws/"


class BadMessage(Exception):
    """A client message we answer with an error frame; the socket stays open."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def _topics(message: dict[str, Any]) -> list[str]:
    topics = message.get("topics")
    if not isinstance(topics, list) or not topics or not all(isinstance(t, str) for t in topics):
        raise BadMessage("invalid_topics", "topics must be a non-empty list of topic names")
    unknown = sorted(set(topics) - TOPICS)
    if unknown:
        raise BadMessage("unknown_topic", f"unknown topics: {', '.join(unknown)}")
    return list(dict.fromkeys(topics))


def _since(message: dict[str, Any]) -> int | None:
    since = message.get("since")
    if since is None:
        return None
    if isinstance(since, bool) or not isinstance(since, int) or not 0 <= since <= EVENT_ID_MAX:
        raise BadMessage("invalid_since", f"since must be an event id from 0 to {EVENT_ID_MAX}")
    return since


def _parse(raw: Mapping[str, Any]) -> dict[str, Any]:
    text = raw.get("text")
    if text is None:
        raise BadMessage("invalid_message", "send JSON text frames")
    if len(text) > MAX_MESSAGE_CHARS:
        raise BadMessage("invalid_message", "message too large")
    try:
        message = orjson.loads(text)
    except orjson.JSONDecodeError as exc:  # its reason too: "Integer exceeds 64-bit range"
        raise BadMessage("invalid_json", f"message is not valid JSON: {exc}") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise BadMessage("invalid_message", 'expected an object with a "type"')
    return message


def _filter_parsers(scope: Scope) -> FilterParsers | None:
    """The REST list filters of each topic, as the app factory handed them over."""
    return getattr(scope["app"].state, "realtime_filters", None)


async def _handle(scope: Scope, hub: Hub, conn: Connection, raw: Mapping[str, Any]) -> None:
    message = _parse(raw)
    kind = message["type"]
    if kind == "reauthenticate":
        await _reauthenticate(scope, hub, conn, message)
    elif kind == "ping":
        conn.send_control({"type": "pong"})
    elif kind == "subscribe":
        topics, since = _topics(message), _since(message)
        try:
            event_filter = EventFilter.parse(
                message.get("filter"), topics=topics, parsers=_filter_parsers(scope)
            )
        except BadFilter as exc:
            raise BadMessage("bad_filter", str(exc)) from None
        except ValueError as exc:
            raise BadMessage("invalid_filter", str(exc)) from None
        await hub.subscribe(conn, topics, since=since, event_filter=event_filter)
    elif kind == "unsubscribe":
        topics = _topics(message)
        hub.unsubscribe(conn, topics)
        conn.send_control({"type": "unsubscribed", "topics": topics})
    else:
        raise BadMessage("unknown_type", f"unknown message type {kind!r}")


async def _reauthenticate(
    scope: Scope, hub: Hub, conn: Connection, message: dict[str, Any]
) -> None:
    """Renew the socket's credential in-band (contract 5): a fresh access token or API key of
    the same user; anything else closes the socket with 4401."""
    token = message.get("token")
    actor = None
    if isinstance(token, str) and token:
        async with hub.store.connection() as db:
            actor = await actor_for_bearer(
                db, token=token, secret_key=scope["app"].state.secret_key, now=hub.store.clock()
            )
    if actor is None or actor.id != conn.actor.id:
        conn.request_close(CLOSE_UNAUTHORIZED, "reauthentication failed")
        return
    conn.actor = actor  # visibility follows the renewed credential's role from now on
    _arm_expiry(hub, conn)
    conn.send_control({"type": "reauthenticated"})


def _arm_expiry(hub: Hub, conn: Connection) -> None:
    """Close the socket (4401) when its credential expires, unless renewed before then."""
    if conn.expiry is not None:
        conn.expiry.cancel()
        conn.expiry = None
    expires_at = conn.actor.expires_at
    if expires_at is None:
        return
    delay = max(0.0, (expires_at - hub.store.clock()).total_seconds())
    actor = conn.actor

    def expire() -> None:
        if conn.actor is actor:  # not renewed meanwhile
            conn.request_close(CLOSE_UNAUTHORIZED, "credentials expired")

    conn.expiry = asyncio.get_running_loop().call_later(delay, expire)


async def _authenticated(scope: Scope, receive: Receive, send: Send) -> tuple[Actor, Hub] | None:
    """Check credentials on the handshake; refuse (403) when there are none or they are bad."""
    websocket = WebSocket(scope, receive, send)
    app = scope["app"]
    hub: Hub | None = getattr(app.state, "realtime_hub", None)
    realtime = getattr(app.state, "realtime", None)
    actor = await authenticate(
        websocket,
        store=app.state.store,
        secret_key=app.state.secret_key,
        allowed_origins=realtime.settings.allowed_origins if realtime is not None else (),
    )
    if actor is None or hub is None:
        await websocket.close()  # before accept: the server answers 403
        return None
    await websocket.accept(subprotocol=accepted_subprotocol(websocket))
    return actor, hub


async def ws_endpoint(scope: Scope, receive: Receive, send: Send) -> None:
    """Serve one socket until the peer or the server leaves (raw ASGI: small per socket)."""
    found = await _authenticated(scope, receive, send)
    if found is None:
        return
    actor, hub = found
    conn = Connection(actor, max_queued=hub.max_queued, fast_paths=hub.fast_paths)
    conn.start(send)
    hub.add(conn)
    _arm_expiry(hub, conn)
    try:
        conn.send_control(
            {
                "type": "welcome",
                "user": {"id": actor.id, "username": actor.username, "role": actor.role.value},
                "last_event_id": hub.last_id,
            }
        )
        while True:
            raw = await receive()
            if raw["type"] == "websocket.disconnect":
                return
            if conn.close_code is not None:
                continue  # closing: wait for the peer's disconnect
            try:
                await _handle(scope, hub, conn, raw)
            except BadMessage as bad:
                conn.send_control({"type": "error", "code": bad.code, "detail": bad.detail})
    finally:
        if conn.expiry is not None:
            conn.expiry.cancel()
        hub.remove(conn)
        await conn.stop()


class RealtimeShortcut:
    """Middleware: send /ws/ straight to the endpoint, past the HTTP-only middleware.

    Every middleware below is a pass-through for WebSocket scopes, but each would keep a
    suspended frame alive for the socket's whole life (~3 KiB per idle connection).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"] == WS_PATH:
            await ws_endpoint(scope, receive, send)
        else:
            await self.app(scope, receive, send)
