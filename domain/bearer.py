"""The one resolution of a bearer string to an actor, used by REST and by /ws/."""

from __future__ import annotations

from datetime import datetime

from databases.core import Connection

from domain.actors import Actor
from domain.api_keys import actor_for_api_key, looks_like_api_key
from domain.tokens import actor_for_access_token


async def actor_for_bearer(
    conn: Connection, *, token: str, secret_key: str, now: datetime
) -> Actor | None:
    """The actor behind an API key (`bms_…`) or a signed access token, or None."""
    if looks_like_api_key(token):
        return await actor_for_api_key(conn, key=token, now=now)
    return await actor_for_access_token(conn, token=token, secret_key=secret_key, now=now)
