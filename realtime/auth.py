"""Who is opening a socket: bearer token, or session cookie from an allowed origin."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.websockets import WebSocket

from db.store import Store
from domain.actors import Actor
from domain.origins import is_trusted_origin

SESSION_COOKIE = "sessionid"


BEARER_SUBPROTOCOL = "bearer."  # `bearer.<key or token>`: how a browser sends a credential


def bearer_token(websocket: WebSocket) -> str | None:
    """`Authorization: Bearer <token>`, else a `bearer.<key>` subprotocol, else `?token=`.

    Browsers cannot set headers on a WebSocket; the subprotocol keeps a key out of the URL
    (and so out of access logs). API keys and access tokens both fit: every character of
    either is allowed in a subprotocol name.
    """
    header = websocket.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    for protocol in websocket.scope.get("subprotocols", ()):
        if protocol.startswith(BEARER_SUBPROTOCOL):
            return protocol[len(BEARER_SUBPROTOCOL) :] or None
    return websocket.query_params.get("token") or None


def accepted_subprotocol(websocket: WebSocket) -> str | None:
    """Echo the `bms` subprotocol if offered (a browser refuses an answer it did not offer)."""
    offered = websocket.scope.get("subprotocols", ())
    return "bms" if "bms" in offered else None


def origin_allowed(websocket: WebSocket, allowed_origins: Sequence[str]) -> bool:
    """Cookie sockets only from a trusted origin (anti-CSWSH, the same rule as CSRF).

    A missing Origin means a non-browser client: a cross-site page cannot omit it.
    """
    origin = websocket.headers.get("origin")
    if origin is None:
        return True
    host = websocket.headers.get("host", "")
    return is_trusted_origin(origin, host=host, allowed=allowed_origins)


async def authenticate(
    websocket: WebSocket, *, store: Store, secret_key: str, allowed_origins: Sequence[str]
) -> Actor | None:
    """The acting user, or None (the handshake is then refused with 403)."""
    from domain.bearer import actor_for_bearer
    from domain.sessions import actor_for_session_key

    now = store.clock()
    token = bearer_token(websocket)
    if token is not None:
        async with store.connection() as conn:
            return await actor_for_bearer(conn, token=token, secret_key=secret_key, now=now)
    key = websocket.cookies.get(SESSION_COOKIE)
    if not key or not origin_allowed(websocket, allowed_origins):
        return None
    async with store.connection() as conn:
        return await actor_for_session_key(conn, key=key, now=now)
