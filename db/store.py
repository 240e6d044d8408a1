"""The database handle shared by a process, and the hooks that run after each commit."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from databases import Database
from databases.core import Connection

from db.urls import async_driver_url

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from db.uow import CommittedEvent, UnitOfWork

SQLITE_BUSY_TIMEOUT_SECS = 30
PG_POOL_MAX = 20

CommitListener = Callable[[Sequence["CommittedEvent"]], Awaitable[None]]


class Store:
    """One `databases.Database` plus the listeners told about committed events."""

    def __init__(self, database_url: str, *, pool_max: int = PG_POOL_MAX) -> None:
        url = async_driver_url(database_url)
        self.is_postgres = url.get_backend_name() == "postgresql"
        options: dict[str, Any] = (
            {"min_size": 1, "max_size": pool_max}
            if self.is_postgres
            else {"timeout": SQLITE_BUSY_TIMEOUT_SECS}
        )
        self.database = Database(url.render_as_string(hide_password=False), **options)
        self.commit_listeners: list[CommitListener] = []
        # Replaceable clock: tests drive time-based jobs without sleeping.
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    async def connect(self) -> None:
        await self.database.connect()

    async def disconnect(self) -> None:
        await self.database.disconnect()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        """Yield a connection for reads (SQLite: with foreign keys enforced)."""
        async with self.database.connection() as conn:
            if not self.is_postgres:
                await conn.execute("PRAGMA foreign_keys = ON")
            yield conn

    def unit_of_work(self, *, actor_id: int | None) -> UnitOfWork:
        from db.uow import UnitOfWork

        return UnitOfWork(self, actor_id=actor_id)

    async def notify_committed(self, events: Sequence[CommittedEvent]) -> None:
        for listener in self.commit_listeners:
            await listener(events)
