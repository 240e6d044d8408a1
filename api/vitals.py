"""What the alert rules watch that no request counter shows: read when /metrics is scraped.

Two kinds:
- per process (pool use, open sockets): gauges sampled every few seconds by each `bms serve`
  process, summed over live processes in multiprocess mode;
- shared state (readiness, relay lag, scheduler, recurring jobs): read from the database by
  whichever process answers the scrape, so every process reports the same values.
A database that does not answer leaves only `bms_ready` (0): the scrape itself never fails.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime

import sqlalchemy as sa
from prometheus_client import Gauge
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.applications import Starlette

from db.backup.record import last_backup
from db.store import Store
from db.tables import emails, events, job_runs
from tasks.jobs import Job
from tasks.scheduler import LEASE_HOLDER_SQL, SCHEDULER_LOCK_KEY

SAMPLE_EVERY_SECS = 5.0
VITALS_TIMEOUT_SECS = 2.0

POOL_IN_USE = Gauge(
    "bms_db_pool_connections_in_use",
    "Pooled PostgreSQL connections held by a request or task",
    multiprocess_mode="livesum",
)
POOL_MAX = Gauge(
    "bms_db_pool_connections_max", "Pool size (DATABASE_POOL_MAX)", multiprocess_mode="livesum"
)
POOL_WAITING = Gauge(
    "bms_db_pool_waiting", "Callers queued for a pooled connection", multiprocess_mode="livesum"
)
WS_CONNECTIONS = Gauge("bms_ws_connections", "Open WebSockets", multiprocess_mode="livesum")


def sample_process(app: Starlette) -> None:
    """Copy this process's pool and socket counts into its gauges."""
    store: Store = app.state.store
    if store.is_postgres:
        POOL_IN_USE.set(store.pool_in_use)
        POOL_MAX.set(store.pool_max)
        POOL_WAITING.set(store.pool_waiting)
    hub = getattr(app.state, "realtime_hub", None)
    WS_CONNECTIONS.set(len(hub.connections) if hub is not None else 0)


@asynccontextmanager
async def vitals_sampler(app: Starlette) -> AsyncIterator[None]:
    """App component: sample this process every few seconds (other workers are not scraped)."""

    async def sample_forever() -> None:
        while True:
            sample_process(app)
            await asyncio.sleep(SAMPLE_EVERY_SECS)

    task = asyncio.create_task(sample_forever(), name="bms-vitals")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class Snapshot(Collector):
    """A collector that yields metrics read beforehand (prometheus_client collects in sync)."""

    def __init__(self, metrics: Iterable[Metric]) -> None:
        self.metrics = list(metrics)

    def collect(self) -> Iterable[Metric]:
        return self.metrics


def readiness_metric(checks: dict[str, str]) -> Metric:
    ready = GaugeMetricFamily(
        "bms_ready", "1 when the dependency answers (as /readyz reports)", labels=["check"]
    )
    for name, outcome in checks.items():
        ready.add_metric([name], 1.0 if outcome == "ok" else 0.0)
    return ready


async def database_vitals(
    store: Store, *, jobs: Sequence[Job], relay: bool, embedded_scheduler: bool
) -> list[Metric]:
    """Relay lag, scheduler lease and recurring jobs; empty when the database is away."""
    try:
        async with asyncio.timeout(VITALS_TIMEOUT_SECS):
            metrics = await _job_metrics(store, jobs)
            metrics.append(await _backup_metric(store))
            metrics.extend(await _outbox_metrics(store))
            metrics.append(await _scheduler_metric(store, embedded=embedded_scheduler))
            if relay:
                metrics.extend(await _relay_metrics(store))
    except Exception:  # a scrape reports what it can; bms_ready says why
        return []
    return metrics


async def _relay_metrics(store: Store) -> list[Metric]:
    query = sa.select(sa.func.count(), sa.func.min(events.c.created_at)).where(
        sa.not_(events.c.published)
    )
    async with store.connection() as conn:
        row = await conn.fetch_one(query)
    count, oldest = (row[0], row[1]) if row else (0, None)
    age = (store.clock() - oldest).total_seconds() if oldest is not None else 0.0
    return [
        GaugeMetricFamily(
            "bms_realtime_unpublished_events",
            "Committed events not yet published to Redis (the relay republishes them)",
            value=float(count),
        ),
        GaugeMetricFamily(
            "bms_realtime_unpublished_oldest_age_seconds",
            "Age of the oldest committed event not yet published (0 when none)",
            value=max(0.0, age),
        ),
    ]


async def _outbox_metrics(store: Store) -> list[Metric]:
    """The email outbox by status, the wait of its oldest unsent email, failures (#11)."""
    unsent = emails.c.status.in_(("queued", "sending"))
    async with store.connection() as conn:
        rows = await conn.fetch_all(
            sa.select(emails.c.status, sa.func.count()).group_by(emails.c.status)
        )
        oldest = await conn.fetch_val(sa.select(sa.func.min(emails.c.created_at)).where(unsent))
    counts = {"queued": 0, "sending": 0, "sent": 0, "failed": 0} | {r[0]: r[1] for r in rows}
    by_status = GaugeMetricFamily(
        "bms_email_outbox_messages", "Emails in the outbox by status", labels=["status"]
    )
    for status, count in counts.items():
        by_status.add_metric([status], float(count))
    age = (store.clock() - oldest).total_seconds() if oldest is not None else 0.0
    return [
        by_status,
        GaugeMetricFamily(
            "bms_email_outbox_oldest_age_seconds",
            "How long the oldest unsent email has waited since it was queued (0 when none)",
            value=max(0.0, age),
        ),
        CounterMetricFamily(
            "bms_emails_failed",
            "Emails failed for good (5xx answer or retry horizon spent), as the outbox holds them",
            value=float(counts["failed"]),
        ),
    ]


async def _scheduler_metric(store: Store, *, embedded: bool) -> Metric:
    if store.is_postgres:
        async with store.connection() as conn:
            holder = await conn.raw_connection.fetchval(LEASE_HOLDER_SQL, SCHEDULER_LOCK_KEY)
        active = 1.0 if holder else 0.0
    else:  # SQLite: `bms serve` runs the scheduler in-process
        active = 1.0 if embedded else 0.0
    return GaugeMetricFamily(
        "bms_scheduler_active", "1 while a scheduler holds the lease", value=active
    )


def _timestamp(value: datetime | None) -> float:
    return value.timestamp() if value is not None else 0.0


async def _backup_metric(store: Store) -> Metric:
    return GaugeMetricFamily(
        "bms_backup_last_success_timestamp_seconds",
        "When the last good backup archive was written, by the job or `bms backup` (0: never)",
        value=_timestamp(await last_backup(store)),
    )


async def _job_metrics(store: Store, jobs: Sequence[Job]) -> list[Metric]:
    async with store.connection() as conn:
        rows = {row["job"]: row for row in await conn.fetch_all(sa.select(job_runs))}
    interval = GaugeMetricFamily(
        "bms_job_interval_seconds", "How often a recurring job should run", labels=["name"]
    )
    kicked = GaugeMetricFamily(
        "bms_job_last_run_timestamp_seconds",
        "When the scheduler last kicked the job (0: never)",
        labels=["name"],
    )
    succeeded = GaugeMetricFamily(
        "bms_job_last_success_timestamp_seconds",
        "When a run of the job last finished without error (0: never)",
        labels=["name"],
    )
    for job in jobs:  # labelled `name`: Prometheus's own `job` label names the scrape job
        row = rows.get(job.name)
        interval.add_metric([job.name], float(job.interval_secs))
        kicked.add_metric([job.name], _timestamp(row["last_run_at"] if row else None))
        succeeded.add_metric([job.name], _timestamp(row["last_success_at"] if row else None))
    return [interval, kicked, succeeded]
