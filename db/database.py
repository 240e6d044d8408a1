"""The `databases.Database` a Store runs on: the compiled-statement cache, or the plain path.

`fast_paths=True` (FAST_PATHS, the default): db/compiled_cache.py, which relies on private
APIs of SQLAlchemy and `databases` (listed in its docstring) to compile each statement
shape once. `fast_paths=False`: `databases`' own backends through their public interface
only; statements built with `db.statements.bound` have their values filled in first.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from databases import Database
from databases.backends.postgres import PostgresBackend
from databases.backends.sqlite import SQLiteBackend
from databases.interfaces import ConnectionBackend, Record, TransactionBackend
from sqlalchemy.sql import ClauseElement

from db.statements import plain


class PlainConnection(ConnectionBackend):
    """A backend connection that fills in `Bound` values, then delegates every call."""

    def __init__(self, inner: ConnectionBackend) -> None:
        self._inner = inner

    async def acquire(self) -> None:
        await self._inner.acquire()

    async def release(self) -> None:
        await self._inner.release()

    async def fetch_all(self, query: ClauseElement) -> list[Record]:
        return await self._inner.fetch_all(plain(query))

    async def fetch_one(self, query: ClauseElement) -> Record | None:
        return await self._inner.fetch_one(plain(query))

    async def fetch_val(self, query: ClauseElement, column: Any = 0) -> Any:
        return await self._inner.fetch_val(plain(query), column)

    async def execute(self, query: ClauseElement) -> Any:
        return await self._inner.execute(plain(query))

    async def execute_many(self, queries: list[ClauseElement]) -> None:
        await self._inner.execute_many([plain(query) for query in queries])

    async def iterate(self, query: ClauseElement) -> AsyncGenerator[Any, None]:
        async for row in self._inner.iterate(plain(query)):
            yield row

    def transaction(self) -> TransactionBackend:
        return self._inner.transaction()

    @property
    def raw_connection(self) -> Any:
        return self._inner.raw_connection


class PlainPostgresBackend(PostgresBackend):
    def connection(self) -> ConnectionBackend:  # type: ignore[override]  # the interface type
        return PlainConnection(super().connection())


class PlainSQLiteBackend(SQLiteBackend):
    def connection(self) -> ConnectionBackend:  # type: ignore[override]  # the interface type
        return PlainConnection(super().connection())


class PlainDatabase(Database):
    """`databases.Database` whose connections accept `bound` statements; nothing cached."""

    SUPPORTED_BACKENDS = {
        **Database.SUPPORTED_BACKENDS,
        "postgresql": f"{__name__}:PlainPostgresBackend",
        "postgres": f"{__name__}:PlainPostgresBackend",
        "sqlite": f"{__name__}:PlainSQLiteBackend",
    }


def make_database(url: str, *, fast_paths: bool, **options: Any) -> Database:
    """The fast path (compiled-statement cache) or the plain one; same rows either way."""
    if fast_paths:
        from db.compiled_cache import CachingDatabase  # private APIs: only when chosen

        return CachingDatabase(url, **options)
    return PlainDatabase(url, **options)
