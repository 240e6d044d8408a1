"""API keys: long-lived bearer secrets for wall displays, scripts and the CLI.

A key acts as its user (never with more rights), optionally read-only and optionally
restricted to one site. The secret is shown once; only its SHA-256 is stored (it is 256
random bits, so a fast hash is enough). Its `bms_` prefix lets secret scanners find leaks.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from databases.core import Connection
from pydantic import AwareDatetime, Field

from db.statements import DetailQuery, bound
from db.tables import api_keys, locations, users
from db.types import Row
from db.uow import UnitOfWork
from domain.actors import Actor, Role
from domain.errors import NotFound, PermissionDenied, ValidationFailed
from domain.references import require_row
from domain.resource import ResourceRules
from domain.schemas import Schema, validate
from domain.sessions import hash_key  # a long random secret: one SHA-256, as session keys
from domain.sites import facilities_of

KEY_PREFIX = "bms_"
SHOWN_PREFIX_CHARS = 12  # "bms_" + 8 characters: enough to tell keys apart in a list
LAST_USED_RESOLUTION_SECS = 60  # `last_used_at` is written at most once a minute per key
MAX_KEY_CHARS = 128


class ApiKeyIn(Schema):
    name: str = Field(min_length=1, max_length=100)
    scope: Literal["read", "read-write"] = "read"
    location: int | None = None
    expires_at: AwareDatetime | None = None
    user: int | None = None


def looks_like_api_key(token: str) -> bool:
    return token.startswith(KEY_PREFIX)


def serialize(row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "prefix": row["prefix"],
        "scope": row["scope"],
        "location": row["location_id"],
        "expires_at": row["expires_at"],
        "last_used_at": row["last_used_at"],
        "user": row["user_id"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def list_query(actor: Actor) -> sa.Select[Any]:
    """Own keys; an admin sees everyone's."""
    query = sa.select(api_keys)
    return query if actor.is_admin else query.where(api_keys.c.user_id == actor.id)


# The detail read: built once, only the ids change.
_DETAIL = DetailQuery.of(sa.select(api_keys), api_keys.c.id, owner_column=api_keys.c.user_id)


def _detail(actor: Actor, key_id: int) -> Any:
    """The rule of `list_query` (own keys; an admin's: everyone's) for one key."""
    return _DETAIL.by_id(key_id) if actor.is_admin else _DETAIL.owned_by(actor.id, key_id)


async def get_api_key(conn: Connection, actor: Actor, key_id: int) -> dict[str, Any] | None:
    row = await conn.fetch_one(_detail(actor, key_id))
    return serialize(row) if row else None


async def _owner(uow: UnitOfWork, actor: Actor, requested: int | None) -> int:
    if requested is None or requested == actor.id:
        return actor.id
    if not actor.is_admin:
        raise PermissionDenied("Only an admin may create a key for another user.")
    await require_row(uow.conn, field="user", table=users, value=requested)
    return requested


async def create_api_key(uow: UnitOfWork, actor: Actor, data: Mapping[str, Any]) -> dict[str, Any]:
    """Create a key and return its representation plus `key`, the secret (shown only here)."""
    if actor.via == "api_key":
        # A key minting keys could outlive its own expiry or drop its site restriction.
        raise PermissionDenied("An API key cannot create API keys; sign in to do so.")
    values = validate(ApiKeyIn, data)
    if values.expires_at is not None and values.expires_at <= uow.now:
        raise ValidationFailed.on("expires_at", "The expiry must be in the future.")
    await require_row(uow.conn, field="location", table=locations, value=values.location)
    if values.location is not None and values.scope != "read":
        # A site restriction is for screens: it narrows what a key reads (domain/sites.py).
        raise ValidationFailed.on("scope", "A key restricted to a location is read-only.")
    owner = await _owner(uow, actor, values.user)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    key_id = await uow.conn.execute(
        api_keys.insert().values(
            user_id=owner,
            name=values.name,
            prefix=key[:SHOWN_PREFIX_CHARS],
            key_hash=hash_key(key),
            scope=values.scope,
            location_id=values.location,
            expires_at=values.expires_at,
            created_at=uow.now,
            updated_at=uow.now,
        )
    )
    created = await get_api_key(uow.conn, actor, key_id=key_id)
    assert created is not None
    return {**created, "key": key}


async def delete_api_key(
    uow: UnitOfWork, actor: Actor, key_id: int, *, if_match: str | None = None
) -> None:
    """Revoke a key: the row goes, and its sockets close once the transaction commits."""
    row = await uow.conn.fetch_one(_detail(actor, key_id))
    if row is None:
        raise NotFound()
    await uow.conn.execute(api_keys.delete().where(api_keys.c.id == key_id))
    uow.revoke(row["user_id"], row["key_hash"])


# Runs on every request made with a key: built once, only the values change.
_LIVE_KEY = (
    sa.select(
        api_keys.c.id,
        api_keys.c.scope,
        api_keys.c.location_id,
        api_keys.c.last_used_at,
        api_keys.c.expires_at,
        users.c.id.label("user_id"),
        users.c.username,
        users.c.role,
    )
    .select_from(api_keys.join(users, users.c.id == api_keys.c.user_id))
    .where(
        api_keys.c.key_hash == sa.bindparam("key_hash"),
        sa.or_(api_keys.c.expires_at.is_(None), api_keys.c.expires_at > sa.bindparam("now")),
        users.c.is_active.is_(True),
    )
)


async def actor_for_api_key(conn: Connection, *, key: str, now: datetime) -> Actor | None:
    """The active user behind a live key (acting with the key's limits), or None."""
    if not looks_like_api_key(key) or len(key) > MAX_KEY_CHARS:
        return None
    key_hash = hash_key(key)
    row = await conn.fetch_one(bound(_LIVE_KEY, key_hash=key_hash, now=now))
    if row is None:
        return None
    last_used = row["last_used_at"]
    if last_used is None or now - last_used >= timedelta(seconds=LAST_USED_RESOLUTION_SECS):
        await conn.execute(
            api_keys.update().where(api_keys.c.id == row["id"]).values(last_used_at=now)
        )
    return Actor(
        row["user_id"],
        row["username"],
        Role(row["role"]),
        "api_key",
        key_hash,
        read_only=row["scope"] == "read",
        location_id=row["location_id"],
        site_facilities=(
            await facilities_of(conn, location_id=row["location_id"])
            if row["location_id"] is not None
            else None
        ),
        expires_at=row["expires_at"],
    )


async def live_key_hashes(conn: Connection, hashes: list[str], *, now: datetime) -> dict[str, str]:
    """Which of these key hashes still authenticate, with their user's current role (the
    sockets' periodic re-check)."""
    rows = await conn.fetch_all(
        sa.select(api_keys.c.key_hash, users.c.role)
        .select_from(api_keys.join(users, users.c.id == api_keys.c.user_id))
        .where(
            api_keys.c.key_hash.in_(hashes),
            sa.or_(api_keys.c.expires_at.is_(None), api_keys.c.expires_at > now),
            users.c.is_active.is_(True),
        )
    )
    return {row[0]: row[1] for row in rows}


# What api/ declares the REST resource from (domain/resource.py).
RULES = ResourceRules(
    serialize=serialize,
    list_query=list_query,
    get=get_api_key,
    create=create_api_key,
    delete=delete_api_key,
)
