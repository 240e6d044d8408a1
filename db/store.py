"""The database handle shared by a process, and the sink its commits' effects leave through."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from databases.core import Connection

from db.database import make_database
from db.effects import EffectSink
from db.errors import is_connection_lost
from db.urls import async_driver_url

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from db.uow import UnitOfWork

SQLITE_BUSY_TIMEOUT_SECS = 30
PG_POOL_MAX = 20
# DATABASE_READ_URL unreachable: reads go to the primary, and the replica is tried again
# after this long (one connection attempt, at most REPLICA_CONNECT_TIMEOUT_SECS).
REPLICA_RETRY_SECS = 5.0
REPLICA_CONNECT_TIMEOUT_SECS = 2.0

logger = logging.getLogger("bms.db.store")


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


# WAL positions as text ("16/B374D848"); as ints (`lsn`) they compare in WAL order.
_INSERTED = sa.text("SELECT pg_current_wal_insert_lsn()::text")
_REPLAYED = sa.text("SELECT pg_last_wal_replay_lsn()::text")  # NULL: not a standby
LSN_UNKNOWN = 1 << 64  # beyond any position: read from the primary


def lsn(text: str | None) -> int | None:
    """A `pg_lsn` as text ("16/B374D848") as an int; None stays None."""
    if text is None:
        return None
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) + int(low, 16)


@dataclass
class ClientWrites:
    """What one request knows of its client's writes (api/replica.py sets one per request).

    `read_after`: the WAL position its reads must see (the client's last write, from its
    cookie); `wrote_at`: the position of the newest commit made while answering it.
    """

    read_after: int | None = None
    wrote_at: int | None = None

    def wrote(self, position: int) -> None:
        self.wrote_at = max(self.wrote_at or 0, position)
        self.read_after = max(self.read_after or 0, position)  # its own later reads too


_CLIENT: ContextVar[ClientWrites | None] = ContextVar("bms_client_writes", default=None)


@contextmanager
def client_writes(client: ClientWrites) -> Iterator[ClientWrites]:
    """Route the reads and note the commits of the code run inside for this client."""
    token = _CLIENT.set(client)
    try:
        yield client
    finally:
        _CLIENT.reset(token)


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
        read_url: str | None = None,
        connect_timeout_secs: float | None = None,
    ) -> None:
        url = async_driver_url(database_url)
        self.is_postgres = url.get_backend_name() == "postgresql"
        options: dict[str, Any] = (
            {"min_size": 1, "max_size": pool_max, "reset": _keep_session}
            if self.is_postgres
            else {"timeout": SQLITE_BUSY_TIMEOUT_SECS}
        )
        if connect_timeout_secs is not None and self.is_postgres:
            options["timeout"] = connect_timeout_secs
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
        # DATABASE_READ_URL: a streaming replica's pool for list and detail reads
        # (`read_connection`), queued like this one's; never written through.
        # Unreachable, it rests (reads from the primary) until `_replica_retry_at`.
        self.replica: Store | None = None
        self.replica_error: str | None = None  # why the replica rests, for /readyz
        self._replica_retry_at = 0.0
        self._replica_connecting = asyncio.Lock()
        if read_url:
            self.replica = Store(
                read_url,
                pool_max=pool_max,
                fast_paths=fast_paths,
                connect_timeout_secs=REPLICA_CONNECT_TIMEOUT_SECS,
            )
            if not (self.is_postgres and self.replica.is_postgres):
                raise ValueError("a read replica needs PostgreSQL for both URLs")
        self.sink = sink if sink is not None else EffectSink()
        self._indexes: dict[str, bool] = {}  # `has_index`, asked once per process
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
        if self.replica is not None:
            await self._connect_replica(self.replica)

    async def has_index(self, name: str) -> bool:
        """Whether the PostgreSQL database has the index `name` (one the migrations may skip).

        Asked once per process and name: an index created by hand later counts after a restart.
        """
        found = self._indexes.get(name)
        if found is None:
            found = False
            if self.is_postgres:
                async with self.connection() as conn:
                    found = bool(
                        await conn.fetch_val(
                            sa.text("SELECT to_regclass(:name) IS NOT NULL").bindparams(name=name)
                        )
                    )
            self._indexes[name] = found
        return found

    async def disconnect(self) -> None:
        try:
            if self.replica is not None and self.replica.database.is_connected:
                await self.replica.disconnect()
        finally:
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

    def read_connection(self) -> AbstractAsyncContextManager[Connection]:
        """A connection for list and detail reads: the replica's (DATABASE_READ_URL) unless
        this client's last write is not on it yet; else the primary's (`connection`).

        Read-your-writes: a request whose client wrote recently carries the WAL position of
        that write (`ClientWrites.read_after`, from api/replica.py's cookie). The replica
        serves it once its `pg_last_wal_replay_lsn()` has passed that position, asked on the
        connection that will read (replicas behind one address may differ). A read server
        that is not a standby has no replay position: that client reads from the primary
        until its cookie expires (the time-based fallback).
        """
        if self.replica is None:
            return self.connection()
        return self._replica_connection(self.replica)

    @asynccontextmanager
    async def _replica_connection(self, replica: Store) -> AsyncIterator[Connection]:
        """The replica's connection if it answers and has this client's last write; else
        the primary's. An unreachable replica rests for REPLICA_RETRY_SECS: the reads of a
        node never fail because its replica is down."""
        client = _CLIENT.get(None)
        needed = client.read_after if client is not None else None
        if await self._replica_ready(replica):
            async with contextlib.AsyncExitStack() as stack:
                try:
                    conn = await stack.enter_async_context(replica.connection())
                    replayed = None if needed is None else await conn.fetch_val(_REPLAYED)
                except Exception as exc:
                    self._rest_replica(exc)
                else:
                    self._replica_answered()
                    if needed is None or (lsn(replayed) or -1) >= needed:
                        try:
                            yield conn
                        except Exception as exc:
                            if is_connection_lost(exc):  # a pooled connection went stale
                                self._rest_replica(exc)
                            raise
                        return
        async with self.connection() as conn:
            yield conn

    async def probe_replica(self) -> str:
        """"ok", or why list and detail reads go to the primary now (/readyz, /metrics)."""
        replica = self.replica
        if replica is None:
            return "error: no DATABASE_READ_URL"
        if await self._replica_ready(replica):
            try:
                async with replica.connection() as conn:
                    await conn.fetch_val(sa.text("SELECT 1"))
            except Exception as exc:
                self._rest_replica(exc)
            else:
                self._replica_answered()
                return "ok"
        return f"error: {self.replica_error}"

    async def _replica_ready(self, replica: Store) -> bool:
        """False while the replica rests; connects it first if it never did (it was down
        when this process started)."""
        if self.replica_error is not None and time.monotonic() < self._replica_retry_at:
            return False
        if not replica.database.is_connected:
            async with self._replica_connecting:
                if not replica.database.is_connected:
                    return await self._connect_replica(replica)
        return True

    async def _connect_replica(self, replica: Store) -> bool:
        try:
            await replica.connect()
        except Exception as exc:
            self._rest_replica(exc)
            return False
        return True

    def _replica_answered(self) -> None:
        if self.replica_error is not None:
            logger.warning("read replica answers again; list and detail reads go to it")
            self.replica_error = None

    def _rest_replica(self, exc: BaseException) -> None:
        """Read from the primary for a while; say so once per outage, not per read."""
        if self.replica_error is None:
            logger.warning(
                "read replica unreachable (%s); reading from the primary, retrying every %.0f s",
                type(exc).__name__,
                REPLICA_RETRY_SECS,
            )
        self.replica_error = type(exc).__name__
        self._replica_retry_at = time.monotonic() + REPLICA_RETRY_SECS

    async def note_commit(self, conn: Connection) -> None:
        """After a commit on `conn`: keep its WAL position for the client's next reads.

        Only with a replica and a client (an HTTP request through api/replica.py): one round
        trip on the committing connection. If it fails, the write stands and the client
        reads from the primary until its cookie expires.
        """
        client = _CLIENT.get(None)
        if self.replica is None or client is None:
            return
        try:
            position = lsn(await conn.fetch_val(_INSERTED))
        except Exception:
            position = None
        client.wrote(LSN_UNKNOWN if position is None else position)

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
