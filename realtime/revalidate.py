"""Safety net for revocation: sockets whose session or token is gone, or whose user was
deactivated, are found by a periodic batched check (`publish_revocation` is the fast path)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa

from db.store import Store
from db.tables import auth_tokens, sessions, users
from domain.actors import Actor
from domain.api_keys import live_key_hashes

BATCH = 500
Credential = tuple[str, str]  # (via, credential_id)


def _chunks(items: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(items), BATCH):
        yield items[start : start + BATCH]


async def live_credentials(
    store: Store, actors: Iterable[Actor], *, now: datetime
) -> dict[Credential, str]:
    """Which of these actors' credentials still stand, with their user's current role (a
    socket whose role changed closes too, should the revocation broadcast have been lost).

    An expired access token still stands here: its socket closes at expiry on its own
    timer (realtime/endpoint.py), unless it was renewed with `reauthenticate`."""
    by_via: dict[str, set[str]] = {"session": set(), "token": set(), "api_key": set()}
    for actor in actors:
        if actor.credential_id and actor.via in by_via:
            by_via[actor.via].add(actor.credential_id)
    live: dict[Credential, str] = {}
    async with store.connection() as conn:
        for chunk in _chunks(sorted(by_via["session"])):
            rows = await conn.fetch_all(
                sa.select(sessions.c.key_hash, users.c.role)
                .select_from(sessions.join(users, users.c.id == sessions.c.user_id))
                .where(
                    sessions.c.key_hash.in_(chunk),
                    sessions.c.expires_at > now,
                    users.c.is_active.is_(True),
                )
            )
            live.update((("session", row[0]), row[1]) for row in rows)
        for chunk in _chunks(sorted(by_via["token"])):
            rows = await conn.fetch_all(
                sa.select(auth_tokens.c.jti, users.c.role)
                .select_from(auth_tokens.join(users, users.c.id == auth_tokens.c.user_id))
                .where(
                    auth_tokens.c.jti.in_(chunk),
                    auth_tokens.c.revoked_at.is_(None),
                    users.c.is_active.is_(True),
                )
            )
            live.update((("token", row[0]), row[1]) for row in rows)
        for chunk in _chunks(sorted(by_via["api_key"])):
            keys = await live_key_hashes(conn, chunk, now=now)
            live.update((("api_key", key_hash), role) for key_hash, role in keys.items())
    return live


def is_checked(actor: Actor) -> bool:
    """Only session, token and API key sockets carry a credential to re-check."""
    return bool(actor.credential_id) and actor.via in ("session", "token", "api_key")
