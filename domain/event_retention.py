"""Event retention: events older than the configured days are deleted (clients then resync)."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from db.store import Store
from db.tables import events

DEFAULT_RETENTION_DAYS = 7


async def delete_old_events(
    store: Store, *, now: datetime, retention_days: int = DEFAULT_RETENTION_DAYS
) -> int:
    """Delete events older than `retention_days`, always keeping the newest one; return count.

    Keeping the newest row stops SQLite from handing out ids again after the table empties.
    """
    cutoff = now - timedelta(days=retention_days)
    async with store.connection() as conn:
        newest = await conn.fetch_val(sa.select(sa.func.max(events.c.id)))
        if newest is None:
            return 0
        # Count first: `databases` does not report a DELETE row count portably.
        doomed = sa.select(sa.func.count()).where(
            events.c.created_at < cutoff, events.c.id < newest
        )
        count = int(await conn.fetch_val(doomed))
        if count:
            await conn.execute(
                events.delete().where(events.c.created_at < cutoff, events.c.id < newest)
            )
    return count
