"""Reads of the events table the hub needs: newest id, gaps, replay pages, retained range."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from db.backup.marker import RESTORE_TOPIC
from db.store import Store
from db.tables import events
from realtime.wire import HubEvent

PAGE = 500


async def newest_id(store: Store) -> int:
    async with store.connection() as conn:
        return int(await conn.fetch_val(sa.select(sa.func.coalesce(sa.func.max(events.c.id), 0))))


async def oldest_id(store: Store) -> int | None:
    async with store.connection() as conn:
        value = await conn.fetch_val(sa.select(sa.func.min(events.c.id)))
    return None if value is None else int(value)


async def newest_restore_id(store: Store) -> int | None:
    """The id of the latest restore marker (db.backup.marker), if the database was restored."""
    query = sa.select(sa.func.max(events.c.id)).where(events.c.topic == RESTORE_TOPIC)
    async with store.connection() as conn:
        value = await conn.fetch_val(query)
    return None if value is None else int(value)


async def events_between(
    store: Store,
    *,
    after: int,
    upto: int | None = None,
    topics: Iterable[str] | None = None,
    limit: int = PAGE,
) -> list[HubEvent]:
    """Committed events with after < id (<= upto), oldest first, at most `limit`."""
    query = sa.select(events).where(events.c.id > after).order_by(events.c.id).limit(limit)
    if upto is not None:
        query = query.where(events.c.id <= upto)
    if topics is not None:
        query = query.where(events.c.topic.in_(list(topics)))
    async with store.connection() as conn:
        rows = await conn.fetch_all(query)
    return [HubEvent.from_row(row) for row in rows]
