"""Ticket numbers from the `counters` table: sequential, never reused, safe under concurrency."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from db.tables import counters
from db.uow import UnitOfWork

NUMBER_DIGITS = 6


async def next_value(uow: UnitOfWork, *, name: str) -> int:
    """Take the next value of counter `name` inside the caller's transaction."""
    # Creating the row first (a no-op when it exists) lets the UPDATE below lock it; concurrent
    # creators then queue on that row lock, so no two committed callers get the same value.
    dialect_insert = postgresql.insert if uow.store.is_postgres else sqlite.insert
    await uow.conn.execute(
        dialect_insert(counters).values(name=name, value=0).on_conflict_do_nothing()
    )
    value = await uow.conn.fetch_val(
        sa.update(counters)
        .where(counters.c.name == name)
        .values(value=counters.c.value + 1)
        .returning(counters.c.value)
    )
    return int(value)


def format_number(prefix: str, value: int) -> str:
    """`INC`, 1 → `INC-000001` (more digits once the counter outgrows six)."""
    return f"{prefix}-{value:0{NUMBER_DIGITS}d}"


async def next_number(uow: UnitOfWork, *, name: str, prefix: str) -> str:
    """Allocate the next formatted number of counter `name` (e.g. `SRV-000042`)."""
    return format_number(prefix, await next_value(uow, name=name))
