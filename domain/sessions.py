"""Server-side browser sessions: only a hash of the cookie value is stored."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
from databases.core import Connection

from db.tables import sessions, users
from db.uow import UnitOfWork
from domain.actors import Actor, Role

SESSION_COOKIE = "sessionid"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def create_session(uow: UnitOfWork, *, user_id: int, ttl_secs: int) -> str:
    """Start a session and return the cookie value (a fresh key: no fixation)."""
    key = secrets.token_urlsafe(32)
    await uow.conn.execute(
        sessions.insert().values(
            key_hash=hash_key(key),
            user_id=user_id,
            expires_at=uow.now + timedelta(seconds=ttl_secs),
            created_at=uow.now,
        )
    )
    return key


async def actor_for_session_key(conn: Connection, *, key: str, now: datetime) -> Actor | None:
    """The active user behind a live session cookie, or None."""
    if not key or len(key) > 128:
        return None
    key_hash = hash_key(key)
    row = await conn.fetch_one(
        sa.select(users.c.id, users.c.username, users.c.role, sessions.c.expires_at)
        .select_from(sessions.join(users, users.c.id == sessions.c.user_id))
        .where(
            sessions.c.key_hash == key_hash,
            sessions.c.expires_at > now,
            users.c.is_active.is_(True),
        )
    )
    if row is None:
        return None
    return Actor(
        row["id"],
        row["username"],
        Role(row["role"]),
        "session",
        key_hash,
        expires_at=row["expires_at"],
    )


async def destroy_session(uow: UnitOfWork, *, key_hash: str) -> None:
    """End one session: once the transaction commits, no process accepts it and sockets
    opened with it close."""
    ended = await uow.conn.fetch_all(
        sessions.delete().where(sessions.c.key_hash == key_hash).returning(sessions.c.user_id)
    )
    for row in ended:
        uow.revoke(row["user_id"], key_hash)


async def end_user_sessions(
    uow: UnitOfWork, *, user_id: int, keep_session_key_hash: str | None = None
) -> None:
    """End every session of a user (password change, deactivation), optionally but one."""
    query = sessions.delete().where(sessions.c.user_id == user_id)
    if keep_session_key_hash:
        query = query.where(sessions.c.key_hash != keep_session_key_hash)
    await uow.conn.execute(query)
    uow.revoke(user_id)


async def delete_expired_sessions(uow: UnitOfWork, *, kept_days: int) -> int:
    """Retention: drop sessions that expired more than `kept_days` ago; return how many."""
    cutoff = uow.now - timedelta(days=kept_days)
    gone = await uow.conn.fetch_all(
        sessions.delete().where(sessions.c.expires_at < cutoff).returning(sessions.c.id)
    )
    return len(gone)
