"""Ticket numbers from the `counters` table: sequential, never reused, safe under concurrency."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from db.statements import bound
from db.tables import counters
from db.uow import UnitOfWork

NUMBER_DIGITS = 6


def take_next(insert: Any) -> Any:
    """Create the counter at 1, or add 1 to it, in one statement that returns the value.

    On PostgreSQL the conflicting row is locked until the transaction ends, so concurrent
    callers queue on it and no two committed callers get the same value; SQLite has one
    writer at a time.
    """
    return (
        insert(counters)
        .values(name=sa.bindparam("counter"), value=1)
        .on_conflict_do_update(
            index_elements=[counters.c.name], set_={"value": counters.c.value + 1}
        )
        .returning(counters.c.value)
    )


def take_next_if(insert: Any, condition: sa.ColumnElement[bool]) -> Any:
    """`take_next` only when `condition` holds: otherwise no value is taken and nothing is
    returned (a statement that then writes nothing leaves the counter as it was)."""
    name = sa.cast(sa.bindparam("counter", type_=counters.c.name.type), counters.c.name.type)
    offered = sa.select(name, sa.cast(sa.literal(1), counters.c.value.type))
    return (
        insert(counters)
        .from_select(["name", "value"], offered.where(condition))
        .on_conflict_do_update(
            index_elements=[counters.c.name], set_={"value": counters.c.value + 1}
        )
        .returning(counters.c.value)
    )


# Built once per dialect: one round trip per number, nothing compiled per call.
_TAKE_NEXT = {True: take_next(postgresql.insert), False: take_next(sqlite.insert)}


async def next_value(uow: UnitOfWork, *, name: str) -> int:
    """Take the next value of counter `name` inside the caller's transaction."""
    value = await uow.conn.fetch_val(bound(_TAKE_NEXT[uow.store.is_postgres], counter=name))
    return int(value)


def format_number(prefix: str, value: int) -> str:
    """`INC`, 1 → `INC-000001` (more digits once the counter outgrows six)."""
    return f"{prefix}-{value:0{NUMBER_DIGITS}d}"


async def next_number(uow: UnitOfWork, *, name: str, prefix: str) -> str:
    """Allocate the next formatted number of counter `name` (e.g. `SRV-000042`)."""
    return format_number(prefix, await next_value(uow, name=name))
