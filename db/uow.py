"""The unit of work: the one write path that commits a change, its history and its events.

Everything that happens after the commit is in `__aexit__`: the events, revocations and
tasks the transaction produced go to the store's `EffectSink` (db/effects.py, plugged by
the composition root), then the few local callbacks (`after_commit`, e.g. removing a
replaced file) run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass, field
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from databases.core import Connection, Transaction

from db.effects import CommittedEvent, Effects, EffectSink, QueuedTask, Revocation
from db.errors import constraint_violation
from db.statements import bound
from db.tables import events, history, users
from db.types import dumps

if TYPE_CHECKING:
    from db.store import Store

# Held from the events insert to commit, so event ids are handed out in commit order.
EVENTS_ADVISORY_LOCK_KEY = 0x424D5345  # "BMSE"

AfterCommit = Callable[[], Awaitable[None]]

# A write that changes nothing but makes SQLite take its write lock.
_SQLITE_NOOP_WRITE = users.update().where(sa.false()).values(updated_at=users.c.updated_at)


async def take_sqlite_write_lock(conn: Connection) -> None:
    """Serialize SQLite writers from the first statement of the transaction.

    `databases` opens SQLite transactions with a deferred BEGIN; one that reads first and
    writes later cannot wait for another writer (SQLite skips the busy handler to avoid a
    deadlock) and fails at once with "database is locked". Writing first makes the busy
    timeout apply and makes read-check-write sequences (overlap checks) race-free.
    """
    await conn.execute(_SQLITE_NOOP_WRITE)


@dataclass(slots=True)
class _PendingEvent:
    topic: str
    action: str
    object_id: int
    data: str
    owner_id: int | None
    private: bool

    def committed(self, event_id: int, created_at: datetime) -> CommittedEvent:
        """The event as stored (not `asdict`: it deep-copies, on every write)."""
        return CommittedEvent(
            event_id,
            self.topic,
            self.action,
            self.object_id,
            self.data,
            self.owner_id,
            self.private,
            created_at,
        )


@dataclass(slots=True)
class _PendingHistory:
    subject: str
    subject_id: int
    changes: dict[str, list[Any]]


@dataclass
class UnitOfWork:
    """`async with store.unit_of_work(actor_id=...) as uow:` — commit on success, else roll back."""

    store: Store
    actor_id: int | None
    sink: EffectSink
    now: datetime = field(init=False)
    conn: Connection = field(init=False)
    committed_events: list[CommittedEvent] = field(init=False, default_factory=list)
    _events: list[_PendingEvent] = field(init=False, default_factory=list)
    _history: list[_PendingHistory] = field(init=False, default_factory=list)
    _revocations: list[Revocation] = field(init=False, default_factory=list)
    _tasks: list[QueuedTask] = field(init=False, default_factory=list)
    _after_commit: list[AfterCommit] = field(init=False, default_factory=list)
    _transaction: Transaction = field(init=False)
    _exits: AsyncExitStack = field(init=False)

    async def __aenter__(self) -> UnitOfWork:
        async with AsyncExitStack() as stack:  # an error below undoes what was entered
            await stack.enter_async_context(self.store.write_turn())
            self.now = self.store.clock()
            self.conn = await stack.enter_async_context(self.store.connection())
            self._transaction = self.conn.transaction()
            await self._transaction.start()
            if not self.store.is_postgres:
                try:
                    await take_sqlite_write_lock(self.conn)
                except BaseException:  # busy past the timeout: an open BEGIN would keep
                    await self._rollback_quietly()  # its connection, and SQLite's lock, held
                    raise
            self._exits = stack.pop_all()  # left at __aexit__: connection, then write turn
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc is not None:
                await self._transaction.rollback()
                if violation := constraint_violation(exc):
                    raise violation from exc
                return
            try:
                await self._flush_events()
                await self._transaction.commit()
            except BaseException as error:
                await self._rollback_quietly()
                if violation := constraint_violation(error):
                    raise violation from error
                raise
            if self.store.replica is not None:  # the client reads after it (db/store.py)
                await self.store.note_commit(self.conn)
        finally:
            await self._exits.__aexit__(exc_type, exc, tb)
        await self.sink.deliver(Effects(self.committed_events, self._revocations, self._tasks))
        for callback in self._after_commit:
            await callback()

    async def _rollback_quietly(self) -> None:
        with contextlib.suppress(Exception):  # the original error is the one to report
            await self._transaction.rollback()

    def emit(
        self,
        topic: str,
        action: str,
        *,
        object_id: int,
        data: dict[str, Any],
        owner_id: int | None = None,
        private: bool = False,
    ) -> None:
        """Queue a realtime event; it is stored with this transaction and published after it."""
        self._events.append(
            _PendingEvent(topic, action, object_id, dumps(data).decode(), owner_id, private)
        )

    async def record_history(
        self, subject: str, subject_id: int, changes: dict[str, list[Any]]
    ) -> None:
        """Append one history entry: field → [old, new].

        Written at commit with the events (on PostgreSQL in the events insert itself: no
        round trip of its own); nothing reads history inside the transaction that wrote it.
        """
        if changes:
            self._history.append(_PendingHistory(subject, subject_id, changes))

    def revoke(self, user_id: int, credential_id: str | None = None) -> None:
        """Close sockets opened with these credentials (None: all the user's) after commit."""
        self._revocations.append(Revocation(user_id, credential_id))

    def enqueue(self, task_name: str, *args: Any) -> None:
        """Hand a task to the broker once this transaction committed (its rows are visible)."""
        self._tasks.append(QueuedTask(task_name, args))

    def after_commit(self, callback: AfterCommit) -> None:
        """Run a local clean-up once the transaction committed (e.g. remove a replaced file).

        Effects other processes see go through `emit`, `revoke` and `enqueue` instead.
        """
        self._after_commit.append(callback)

    async def _flush_events(self) -> None:
        """Write the queued history entries and events (in that order) before the commit."""
        if self.store.is_postgres and self._events:
            await self._insert_events_locked(self.store.clock())
            return
        if self._history:
            await self._insert_history()
        if not self._events:
            return
        created_at = self.store.clock()
        for pending in self._events:
            values = {**asdict(pending), "created_at": created_at}
            event_id = await self.conn.execute(events.insert().values(**values))
            self.committed_events.append(pending.committed(event_id, created_at))

    async def _insert_events_locked(self, created_at: datetime) -> None:
        """Take the events lock and insert every event in ONE round trip (PostgreSQL).

        The lock is held until commit, so ids come out in commit order; every round trip
        made while holding it serialises all writers, so the lock is taken by the insert
        statement itself (its one-row scan runs before any id is drawn) rather than by a
        statement of its own followed by one insert per event.
        """
        pending = self._events
        values: dict[str, Any] = {
            "key": EVENTS_ADVISORY_LOCK_KEY,
            "topics": [p.topic for p in pending],
            "actions": [p.action for p in pending],
            "object_ids": [p.object_id for p in pending],
            "datas": [p.data for p in pending],
            "owner_ids": [p.owner_id for p in pending],
            "privates": [p.private for p in pending],
            "created_at": created_at,
        }
        statement = _LOCKED_EVENTS_INSERT
        if self._history:
            statement = _HISTORY_AND_LOCKED_EVENTS_INSERT
            values.update(self._history_values())
        rows = await self.conn.fetch_all(bound(statement, **values))
        ids = sorted(row[0] for row in rows)  # drawn in `n` order, one per event
        for event_id, p in zip(ids, pending, strict=True):
            self.committed_events.append(p.committed(event_id, created_at))

    def _history_values(self) -> dict[str, Any]:
        return {
            "h_subjects": [h.subject for h in self._history],
            "h_subject_ids": [h.subject_id for h in self._history],
            "h_changes": [dumps(h.changes).decode() for h in self._history],
            "h_actor_id": self.actor_id,
            "h_at": self.now,
        }

    async def _insert_history(self) -> None:
        if self.store.is_postgres:  # one round trip for them all
            await self.conn.execute(bound(_HISTORY_INSERT, **self._history_values()))
            return
        for entry in self._history:
            await self.conn.execute(
                history.insert().values(
                    subject=entry.subject,
                    subject_id=entry.subject_id,
                    actor_id=self.actor_id,
                    at=self.now,
                    changes=entry.changes,
                )
            )


# PostgreSQL: the history entries of one transaction, in the order they were recorded.
_HISTORY_ROWS = """
    INSERT INTO history (subject, subject_id, actor_id, at, changes)
    SELECT h.subject, h.subject_id, :h_actor_id, :h_at, h.changes
    FROM unnest(CAST(:h_subjects AS text[]), CAST(:h_subject_ids AS int[]),
                CAST(:h_changes AS text[]))
        WITH ORDINALITY AS h(subject, subject_id, changes, n)
    ORDER BY h.n
"""
# The events of one transaction, inserted in order after taking the events lock.
_EVENTS_ROWS = """
    INSERT INTO events (topic, action, object_id, data, owner_id, private, created_at)
    SELECT e.topic, e.action, e.object_id, e.data, e.owner_id, e.private, :created_at
    FROM (SELECT pg_advisory_xact_lock(:key)) AS locked,
        unnest(CAST(:topics AS text[]), CAST(:actions AS text[]), CAST(:object_ids AS int[]),
               CAST(:datas AS text[]), CAST(:owner_ids AS int[]), CAST(:privates AS bool[]))
            WITH ORDINALITY AS e(topic, action, object_id, data, owner_id, private, n)
    ORDER BY e.n
    RETURNING id
"""
_HISTORY_PARAMS = (
    sa.bindparam("h_actor_id", type_=sa.Integer),
    sa.bindparam("h_at", type_=sa.DateTime(timezone=True)),
)
_EVENTS_PARAMS = (
    sa.bindparam("key", type_=sa.BigInteger),
    sa.bindparam("created_at", type_=sa.DateTime(timezone=True)),
)
_LOCKED_EVENTS_INSERT = sa.text(_EVENTS_ROWS).bindparams(*_EVENTS_PARAMS)
_HISTORY_INSERT = sa.text(_HISTORY_ROWS).bindparams(*_HISTORY_PARAMS)
# Both in one statement: a write's history costs no round trip of its own. The history
# insert is a data-modifying CTE, run to completion with the statement.
_HISTORY_AND_LOCKED_EVENTS_INSERT = sa.text(
    f"WITH recorded AS ({_HISTORY_ROWS}) {_EVENTS_ROWS}"
).bindparams(*_HISTORY_PARAMS, *_EVENTS_PARAMS)
