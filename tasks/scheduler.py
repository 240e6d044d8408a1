"""The recurring-job scheduler: one active instance (PostgreSQL advisory lock), others stand by."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import sqlalchemy as sa
import structlog
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url

from db.store import Store
from db.tables import job_runs
from tasks.jobs import Job

log = structlog.get_logger("bms.scheduler")

# Session-level advisory lock held by the active scheduler on its own connection.
SCHEDULER_LOCK_KEY = 0x424D5353  # "BMSS"
LEASE_CHECK_TIMEOUT_SECS = 2.0
LEASE_MIN_IDLE_SECS = 10.0

Kick = Callable[[Job], Awaitable[None]]


# The application name of the session holding advisory lock $1 (one row, or none). A bigint
# key shows in pg_locks as classid (high 32 bits) and objid (low 32 bits).
LEASE_HOLDER_SQL = """
SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.classid::bigint = ($1::bigint >> 32) AND l.objid::bigint = ($1::bigint & 4294967295)
LIMIT 1
"""


def asyncpg_dsn(database_url: str) -> str:
    """A plain postgresql:// DSN for asyncpg from any SQLAlchemy-style URL."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


async def record_success(store: Store, *, job: str) -> None:
    """Note that `job` finished without error now (read by /metrics: job_last_success)."""
    async with store.connection() as conn:
        await conn.execute(
            job_runs.update().where(job_runs.c.job == job).values(last_success_at=store.clock())
        )


class LeaderLease:
    """Hold `pg_try_advisory_lock` on a dedicated connection; losing it ends leadership."""

    def __init__(
        self, database_url: str, key: int = SCHEDULER_LOCK_KEY, *, poll_secs: float = 1.0
    ) -> None:
        self.dsn = asyncpg_dsn(database_url)
        self.key = key
        self.conn: asyncpg.Connection | None = None
        self.held = False
        # A leader that hangs (not just dies) stops pinging: the server ends its session,
        # which frees the lock for a standby. Keepalives catch a vanished host.
        idle_ms = int(max(LEASE_MIN_IDLE_SECS, 5 * poll_secs) * 1000)
        self.server_settings = {
            "idle_session_timeout": str(idle_ms),
            "tcp_keepalives_idle": "5",
            "tcp_keepalives_interval": "2",
            "tcp_keepalives_count": "3",
            # Names this process to the others: a standby logs which process is active.
            "application_name": f"bms-scheduler {socket.gethostname()}:{os.getpid()}"[:63],
        }

    async def _connect(self) -> asyncpg.Connection:
        try:
            return await asyncpg.connect(
                self.dsn, timeout=LEASE_CHECK_TIMEOUT_SECS, server_settings=self.server_settings
            )
        except (asyncpg.UndefinedObjectError, asyncpg.InvalidParameterValueError):  # PG < 14
            settings = {
                k: v for k, v in self.server_settings.items() if k != "idle_session_timeout"
            }
            return await asyncpg.connect(
                self.dsn, timeout=LEASE_CHECK_TIMEOUT_SECS, server_settings=settings
            )

    async def acquire_or_keep(self) -> bool:
        """True while this process holds the lock; the lock dies with its connection."""
        try:
            if self.conn is None or self.conn.is_closed():
                self.conn = await self._connect()
                self.held = False
            async with asyncio.timeout(LEASE_CHECK_TIMEOUT_SECS):
                if self.held:
                    await self.conn.fetchval("SELECT 1")
                    return True
                self.held = bool(
                    await self.conn.fetchval("SELECT pg_try_advisory_lock($1)", self.key)
                )
                return self.held
        except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
            log.warning("scheduler lease lost or unavailable", error=str(exc))
            await self.release()
            return False

    async def holder(self) -> str | None:
        """Who holds the lock (the active scheduler's application name), if anyone."""
        if self.conn is None or self.conn.is_closed():
            return None
        try:
            async with asyncio.timeout(LEASE_CHECK_TIMEOUT_SECS):
                return await self.conn.fetchval(LEASE_HOLDER_SQL, self.key)
        except (OSError, TimeoutError, asyncpg.PostgresError):
            return None

    async def release(self) -> None:
        conn, self.conn, self.held = self.conn, None, False
        if conn is not None and not conn.is_closed():
            with contextlib.suppress(Exception):
                await conn.close(timeout=1)


class Scheduler:
    """Runs each due job once per interval; a run missed while no scheduler ran happens once."""

    def __init__(self, store: Store, jobs: Sequence[Job], kick: Kick, *, poll_secs: float) -> None:
        self.store = store
        self.jobs = list(jobs)
        self.kick = kick
        self.poll_secs = poll_secs
        self.lease = (
            LeaderLease(str(store.database.url), poll_secs=poll_secs) if store.is_postgres else None
        )
        self.is_leader = False
        self._role_logged: str | None = None  # so a standby says so at start, not only on change

    def _insert(self) -> Any:  # the dialect's Insert (both have on_conflict_do_nothing)
        return pg_insert(job_runs) if self.store.is_postgres else sqlite_insert(job_runs)

    async def _claim(self, job: Job, now: datetime) -> datetime | None:
        """Compare-and-set job_runs.last_run_at; returns the previous value (epoch if new)."""
        async with self.store.connection() as conn:
            prev = await conn.fetch_val(
                sa.select(job_runs.c.last_run_at).where(job_runs.c.job == job.name)
            )
            if prev is None:
                query = (
                    self._insert()
                    .values(job=job.name, last_run_at=now)
                    .on_conflict_do_nothing(index_elements=["job"])
                    .returning(job_runs.c.job)
                )
                return datetime.min if await conn.fetch_one(query) else None
            if now - prev < timedelta(seconds=job.interval_secs):
                return None
            claimed = await conn.fetch_one(
                job_runs.update()
                .where(job_runs.c.job == job.name, job_runs.c.last_run_at == prev)
                .values(last_run_at=now)
                .returning(job_runs.c.job)
            )
            return prev if claimed else None

    async def _unclaim(self, job: Job, now: datetime, prev: datetime) -> None:
        async with self.store.connection() as conn:
            if prev == datetime.min:
                await conn.execute(
                    job_runs.delete().where(
                        job_runs.c.job == job.name, job_runs.c.last_run_at == now
                    )
                )
            else:
                await conn.execute(
                    job_runs.update()
                    .where(job_runs.c.job == job.name, job_runs.c.last_run_at == now)
                    .values(last_run_at=prev)
                )

    async def tick(self) -> list[str]:
        """Kick every due job once; if the kick fails the claim is undone for the next tick."""
        now = self.store.clock()
        ran = []
        for job in self.jobs:
            prev = await self._claim(job, now)
            if prev is None:
                continue
            try:
                await self.kick(job)
            except Exception as exc:
                log.warning("could not kick job; will retry", job=job.name, error=str(exc))
                await self._unclaim(job, now, prev)
                continue
            ran.append(job.name)
        if ran:
            log.info("jobs kicked", jobs=ran)
        return ran

    async def _lead(self) -> bool:
        if self.lease is None:
            return True
        leader = await self.lease.acquire_or_keep()
        role = "active" if leader else "standby"
        if role != self._role_logged:
            self._role_logged = role
            if leader:
                log.info("scheduler is active; kicking recurring jobs")
            else:
                active = await self.lease.holder()
                log.info("scheduler is standby", active=active or "none reachable")
        return leader

    async def run(self, stop: asyncio.Event) -> None:
        """Tick while holding the lease, stand by otherwise, until `stop` is set."""
        try:
            while not stop.is_set():
                self.is_leader = await self._lead()
                if self.is_leader:
                    try:
                        await self.tick()
                    except Exception as exc:  # a database hiccup must not end the scheduler
                        log.exception("scheduler tick failed", error=str(exc))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.poll_secs)
        finally:
            if self.lease is not None:
                await self.lease.release()
            self.is_leader = False
