"""Login throttling: every password check is a row reserved before the check, so the limit
holds across server processes however attempts interleave."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from databases.core import Connection

from db.store import Store
from db.tables import login_failures
from db.uow import UnitOfWork
from domain.errors import Throttled


@dataclass(frozen=True)
class LoginLimits:
    failures_per_user: int
    failures_per_client: int
    window_secs: int


def _lock_key(kind: str, value: str) -> int:
    """A signed 64-bit advisory lock key for one username or one address."""
    digest = hashlib.sha256(f"bms-login:{kind}:{value}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def _oldest_if_over(
    conn: Connection, column: sa.Column[Any], value: str, *, since: datetime, limit: int
) -> datetime | None:
    row = await conn.fetch_one(
        sa.select(sa.func.count(), sa.func.min(login_failures.c.at)).where(
            column == value, login_failures.c.at > since
        )
    )
    count, oldest = (row[0], row[1]) if row else (0, None)
    if count < limit or oldest is None:
        return None
    if isinstance(oldest, str):  # SQLite aggregate loses the column type
        oldest = datetime.fromisoformat(oldest)
    return oldest if oldest.tzinfo else oldest.replace(tzinfo=since.tzinfo)


async def check_login_allowed(
    conn: Connection, *, username: str, client_ip: str, now: datetime, limits: LoginLimits
) -> None:
    """Raise Throttled (429) once attempts in the window reach a limit, right password or not."""
    since = now - timedelta(seconds=limits.window_secs)
    for column, value, limit in (
        (login_failures.c.username, username.casefold(), limits.failures_per_user),
        (login_failures.c.client_ip, client_ip, limits.failures_per_client),
    ):
        oldest = await _oldest_if_over(conn, column, value, since=since, limit=limit)
        if oldest is not None:
            retry_after = math.ceil((oldest - since).total_seconds())
            raise Throttled(max(retry_after, 1))


async def reserve_attempt(
    store: Store, *, username: str, client_ip: str, limits: LoginLimits
) -> int:
    """Count one password check before it runs and return its row id (429 when over a limit).

    The row counts as a failure until `release_attempt` removes it, so concurrent attempts
    see each other. PostgreSQL serializes the count-and-insert per username and address with
    transaction advisory locks; SQLite's unit of work holds the database write lock.
    """
    name = username.casefold()[:150]
    async with store.connection() as conn:  # already over: 429 without queueing for a write
        await check_login_allowed(
            conn, username=name, client_ip=client_ip, now=store.clock(), limits=limits
        )
    async with store.unit_of_work(actor_id=None) as uow:
        if store.is_postgres:
            for key in sorted((_lock_key("user", name), _lock_key("ip", client_ip))):
                await uow.conn.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))
        now = store.clock()  # after the locks: rows inserted while waiting are older
        await check_login_allowed(
            uow.conn, username=name, client_ip=client_ip, now=now, limits=limits
        )
        attempt_id: int = await uow.conn.execute(
            login_failures.insert().values(username=name, client_ip=client_ip, at=now)
        )
    return attempt_id


async def release_attempt(uow: UnitOfWork, *, attempt_id: int) -> None:
    """A check that succeeded is no failure: drop its reservation."""
    await uow.conn.execute(login_failures.delete().where(login_failures.c.id == attempt_id))


async def delete_old_failures(uow: UnitOfWork, *, window_secs: int) -> int:
    """Retention: drop failures twice the window old (no longer counted); return how many."""
    cutoff = uow.now - timedelta(seconds=window_secs * 2)
    gone = await uow.conn.fetch_all(
        login_failures.delete().where(login_failures.c.at < cutoff).returning(login_failures.c.id)
    )
    return len(gone)


async def clear_user_failures(uow: UnitOfWork, *, username: str) -> int:
    """Lift a user's lockout (`bms user unlock`): forget their failed attempts; return how many."""
    gone = await uow.conn.fetch_all(
        login_failures.delete()
        .where(login_failures.c.username == username)
        .returning(login_failures.c.id)
    )
    return len(gone)
