"""SQLite: take the database write lock as a transaction's first statement."""

from __future__ import annotations

import sqlalchemy as sa

from db.tables import users
from db.uow import UnitOfWork

# A no-op write that still makes SQLite acquire its RESERVED (write) lock.
_NOOP_WRITE = users.update().where(sa.false()).values(updated_at=users.c.updated_at)


async def take_write_lock(uow: UnitOfWork) -> None:
    """Serialize SQLite writers from the start of the transaction (no-op on PostgreSQL).

    `databases` opens SQLite transactions with a deferred BEGIN. A transaction that read
    first and writes later cannot wait for another writer: SQLite skips the busy handler
    to avoid a deadlock and fails at once with "database is locked". Writing first makes
    the busy timeout apply, and makes read-check-write sequences (overlaps) race-free.
    """
    if not uow.store.is_postgres:
        await uow.conn.execute(_NOOP_WRITE)
