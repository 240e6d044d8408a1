"""/metrics reports what the alert rules watch: readiness, pool, relay lag, scheduler, jobs."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from prometheus_client.core import Metric

from api.vitals import database_vitals
from db.store import Store
from db.tables import events, job_runs
from tasks.jobs import Job
from tasks.scheduler import record_success


def _value(metrics: str, name: str, labels: str = "") -> float:
    found = re.search(rf"^{name}{re.escape(labels)} (\S+)$", metrics, re.MULTILINE)
    assert found, f"{name}{labels} missing"
    return float(found.group(1))


def _sample(families: list[Metric], metric: str, **labels: str) -> float:
    for family in families:
        for sample in family.samples:
            if sample.name == metric and sample.labels == labels:
                return sample.value
    raise AssertionError(f"{metric}{labels} missing")


async def _noop(store: Any, settings: Any) -> dict[str, Any]:
    return {}


async def test_metrics_carry_readiness_pool_scheduler_and_jobs(client: Any, store: Store) -> None:
    text = (await client.get("/metrics")).text
    assert _value(text, "bms_ready", '{check="database"}') == 1.0
    assert _value(text, "bms_job_interval_seconds", '{name="email_sweep"}') > 0
    assert _value(text, "bms_job_last_success_timestamp_seconds", '{name="email_sweep"}') == 0
    assert _value(text, "bms_ws_connections") >= 0
    assert "bms_scheduler_active" in text
    if store.is_postgres:
        assert _value(text, "bms_db_pool_connections_max") == store.pool_max
        assert _value(text, "bms_db_pool_connections_in_use") >= 0
        assert _value(text, "bms_ready", '{check="redis"}') == 1.0
        assert "bms_realtime_unpublished_events" in text


async def test_relay_lag_and_job_success_are_read_from_the_database(store: Store) -> None:
    jobs = [Job("tidy", 60, _noop)]
    now = store.clock()
    async with store.connection() as conn, conn.transaction(force_rollback=True):
        # Uncommitted: this connection sees the rows, the app's relay never does.
        await conn.execute(job_runs.insert().values(job="tidy", last_run_at=now))
        await record_success(store, job="tidy")
        await conn.execute(
            events.insert().values(
                topic="locations", action="created", object_id=1, data="{}", owner_id=None,
                private=False, published=False, created_at=now - timedelta(seconds=120),
            )
        )  # fmt: skip
        found = await database_vitals(store, jobs=jobs, relay=True, embedded_scheduler=True)
    assert _sample(found, "bms_job_last_success_timestamp_seconds", name="tidy") >= now.timestamp()
    assert _sample(found, "bms_job_last_run_timestamp_seconds", name="tidy") == now.timestamp()
    assert _sample(found, "bms_realtime_unpublished_events") >= 1
    assert _sample(found, "bms_realtime_unpublished_oldest_age_seconds") >= 120
    assert _sample(found, "bms_scheduler_active") in (0.0, 1.0)
