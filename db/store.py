"""The database handle shared by a process, and the sink its commits' effects leave through."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from databases.core import Connection

from db.database import make_database
from db.effects import EffectSink
from db.urls import async_driver_url

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from db.uow import UnitOfWork

SQLITE_BUSY_TIMEOUT_SECS = 30
PG_POOL_MAX = 20


async def _keep_session(connection: Any) -> None:
    """Skip asyncpg's reset query on pool release (one round trip per request).

    The default reset (`SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL`)
    undoes session state, and pooled connections never leave any: no SET (only SET LOCAL
    would be allowed), no LISTEN, no session advisory locks (only `pg_advisory_xact_lock`;
    the scheduler's lease uses a connection of its own), no cursors outside transactions,
    and asyncpg's statement cache is per connection by design. asyncpg still rolls back an
    open transaction and drops listeners before calling this.
    """


def _is_closed(raw: Any) -> bool:
    try:
        return bool(raw.is_closed())
    except Exception:  # asyncpg: the proxy was detached, its connection already closed
        return True


class Store:
    """One `databases.Database` plus the sink every unit of work hands its effects to.

    The composition root passes `sink` (or plugs its ends later); without one, commits
    have no after-commit effects beyond the rows (CLI commands, benchmarks).
    """

    def __init__(
        self,
        database_url: str,
        *,
        pool_max: int = PG_POOL_MAX,
        sink: EffectSink | None = None,
        fast_paths: bool = True,
    ) -> None:
        url = async_driver_url(database_url)
        self.is_postgres = url.get_backend_name() == "postgresql"
        options: dict[str, Any] = (
            {"min_size": 1, "max_size": pool_max, "reset": _keep_session}
            if self.is_postgres
            else {"timeout": SQLITE_BUSY_TIMEOUT_SECS}
        )
        # FAST_PATHS: compile each statement shape once (db/compiled_cache.py), or plain.
        self.fast_paths = fast_paths
        self.database = make_database(
            url.render_as_string(hide_password=False), fast_paths=fast_paths, **options
        )
        self.pool_max = pool_max
        # First come, first served for pooled connections (see `connection`).
        self._gate: asyncio.Semaphore | None = None
        # Pool saturation, read by /metrics (api/vitals.py): holders and callers queued.
        self.pool_in_use = 0
        self.pool_waiting = 0
        self._holder: ContextVar[asyncio.Task[Any] | None] = ContextVar(f"bms_store_{id(self)}")
        # SQLite: this process's write transactions, one at a time (see `write_turn`).
        self._write_lock: asyncio.Lock | None = None
        self._writer: ContextVar[asyncio.Task[Any] | None] = ContextVar(f"bms_writer_{id(self)}")
        self.sink = sink if sink is not None else EffectSink()
        # Replaceable clock: tests drive time-based jobs without sleeping.
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    async def connect(self) -> None:
        await self.database.connect()
        if self.is_postgres:
            self._gate = asyncio.Semaphore(self.pool_max)
        else:
            self._write_lock = asyncio.Lock()
            async with self.database.connection() as conn:
                # Write-ahead log: readers never wait for a writer (in the default rollback
                # journal a commit locked readers out, and they slept in the busy handler),
                # one fsync per commit instead of three. Kept in the file; synchronous stays
                # FULL, so a commit survives a power cut.
                await conn.execute("PRAGMA journal_mode = WAL")

    async def disconnect(self) -> None:
        await self.database.disconnect()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        """Yield a connection for reads (SQLite: with foreign keys enforced).

        PostgreSQL: callers queue for a pooled connection in arrival order. asyncpg's pool
        lets a newcomer take a connection just released to a woken waiter, which sends that
        waiter to the back of the queue: under load some requests waited for seconds. The
        gate's permits match the pool size, so whoever passes it finds a free connection.
        A task already holding one reuses it (`databases` keys connections by task), so it
        does not queue again; tasks it starts queue like any other.
        """
        if self._gate is None or self._holder.get(None) is asyncio.current_task():
            async with self.database.connection() as conn:
                if not self.is_postgres:
                    await conn.execute("PRAGMA foreign_keys = ON")
                yield conn
            return
        self.pool_waiting += 1
        try:
            await self._gate.acquire()
        finally:
            self.pool_waiting -= 1
        self.pool_in_use += 1
        token = self._holder.set(asyncio.current_task())
        try:
            conn = self.database.connection()
            await conn.__aenter__()
            try:
                yield conn
            finally:
                await self._give_back(conn)
        finally:
            self._holder.reset(token)
            self.pool_in_use -= 1
            self._gate.release()

    @asynccontextmanager
    async def write_turn(self) -> AsyncIterator[None]:
        """SQLite: wait for this process's turn to write, in arrival order.

        SQLite has one write lock per database. Left to it, concurrent writers of one process
        wait in its busy handler, which sleeps up to 100 ms between tries: under a login
        flood a write waited seconds for a lock that was free most of the time. Queued here,
        the next writer starts the moment the previous one commits; the busy timeout still
        covers other processes (CLI, worker). PostgreSQL: no wait (row locks do the job). A
        task already writing (a nested unit of work) does not queue again.
        """
        if self._write_lock is None or self._writer.get(None) is asyncio.current_task():
            yield
            return
        async with self._write_lock:
            token = self._writer.set(asyncio.current_task())
            try:
                yield
            finally:
                self._writer.reset(token)

    async def _give_back(self, conn: Connection) -> None:
        """Return the task's connection to the pool, or discard it if it is broken.

        `databases` leaves its connection half-held when the server ends it: a failed
        BEGIN, COMMIT or ROLLBACK skips the release, so the pool slot stayed taken and the
        next use of the same object failed with "another operation is in progress". Here,
        the outermost holder checks: a closed connection, or one still counted as held or
        in a transaction, is terminated and its slot given back to the pool.
        """
        backend: Any = conn._connection
        while hasattr(backend, "_inner"):  # db/database.py's PlainConnection wraps one
            backend = backend._inner
        raw = getattr(backend, "_connection", None)  # the asyncpg connection, if acquired
        intact = conn._connection_counter == 1 and not conn._transaction_stack
        if raw is None or (intact and not _is_closed(raw)):
            await conn.__aexit__()
            return
        conn._transaction_stack.clear()
        conn._connection_counter = 0
        self.database._connection = None  # the task's next use starts afresh
        if raw is not None:
            with contextlib.suppress(Exception):  # already closed and handed back
                raw.terminate()
            with contextlib.suppress(Exception):
                await backend.release()  # asyncpg's pool replaces a closed connection
            backend._connection = None

    def unit_of_work(self, *, actor_id: int | None) -> UnitOfWork:
        from db.uow import UnitOfWork

        return UnitOfWork(self, actor_id=actor_id, sink=self.sink)
