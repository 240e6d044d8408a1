"""Login throttling: failures are rows, so every server process sees the same count."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from databases.core import Connection

from db.tables import login_failures
from db.uow import UnitOfWork
from domain.errors import Throttled


@dataclass(frozen=True)
class LoginLimits:
    failures_per_user: int
    failures_per_client: int
    window_secs: int


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
    """Raise Throttled (429) once failures in the window reach a limit, right password or not."""
    since = now - timedelta(seconds=limits.window_secs)
    for column, value, limit in (
        (login_failures.c.username, username.casefold(), limits.failures_per_user),
        (login_failures.c.client_ip, client_ip, limits.failures_per_client),
    ):
        oldest = await _oldest_if_over(conn, column, value, since=since, limit=limit)
        if oldest is not None:
            retry_after = int((oldest - since).total_seconds()) + 1
            raise Throttled(max(retry_after, 1))


async def record_login_failure(uow: UnitOfWork, *, username: str, client_ip: str) -> None:
    await uow.conn.execute(
        login_failures.insert().values(
            username=username.casefold()[:150], client_ip=client_ip, at=uow.now
        )
    )


async def delete_old_failures(uow: UnitOfWork, *, window_secs: int) -> int:
    """Retention: drop failures twice the window old (no longer counted); return how many."""
    cutoff = uow.now - timedelta(seconds=window_secs * 2)
    gone = await uow.conn.fetch_all(
        login_failures.delete().where(login_failures.c.at < cutoff).returning(login_failures.c.id)
    )
    return len(gone)
