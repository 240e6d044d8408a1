"""The scheduler: once per period, a missed run caught up once, one active among several."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from redis import asyncio as aioredis

from bms.settings import Settings
from db.store import Store
from db.tables import job_runs
from tasks.jobs import Job
from tasks.scheduler import LeaderLease, Scheduler
from tests.tasks.conftest import FakeClock, wait_until
from tests.tasks.processes import process_env, start


async def _nothing(store: Any, settings: Any) -> dict[str, Any]:
    return {}


JOBS = [Job("fast", 60, _nothing), Job("slow", 3600, _nothing)]


async def test_each_job_once_per_period_and_catch_up_once(store: Store, clock: FakeClock) -> None:
    kicked: list[str] = []

    async def kick(job: Job) -> None:
        kicked.append(job.name)

    scheduler = Scheduler(store, JOBS, kick, poll_secs=0.1)
    assert await scheduler.tick() == ["fast", "slow"]  # never ran: run now
    assert await scheduler.tick() == []
    clock.advance(seconds=59)
    assert await scheduler.tick() == []
    clock.advance(seconds=1)
    assert await scheduler.tick() == ["fast"]
    # Down for ten hours: each job runs once on return, not once per missed period.
    clock.advance(hours=10)
    assert await scheduler.tick() == ["fast", "slow"]
    assert await scheduler.tick() == []
    async with store.connection() as conn:
        last = await conn.fetch_val(
            sa.select(job_runs.c.last_run_at).where(job_runs.c.job == "slow")
        )
    assert last == clock.now
    assert kicked == ["fast", "slow", "fast", "fast", "slow"]


async def test_failed_kick_is_retried_next_tick(store: Store, clock: FakeClock) -> None:
    fail = True

    async def kick(job: Job) -> None:
        if fail:
            raise ConnectionError("redis down")

    scheduler = Scheduler(store, JOBS[:1], kick, poll_secs=0.1)
    assert await scheduler.tick() == []
    fail = False
    assert await scheduler.tick() == ["fast"]
    clock.advance(seconds=60)
    fail = True
    assert await scheduler.tick() == []
    fail = False
    assert await scheduler.tick() == ["fast"]


async def test_run_loop_in_process(store: Store, clock: FakeClock) -> None:
    kicked: list[str] = []

    async def kick(job: Job) -> None:
        kicked.append(job.name)

    scheduler = Scheduler(store, JOBS, kick, poll_secs=0.01)
    stop = asyncio.Event()
    running = asyncio.create_task(scheduler.run(stop))

    async def both() -> bool:
        return len(kicked) == 2

    await wait_until(both)
    clock.advance(seconds=60)

    async def again() -> bool:
        return len(kicked) == 3

    await wait_until(again)
    stop.set()
    await asyncio.wait_for(running, 5)
    assert kicked == ["fast", "slow", "fast"]


async def _kicks(redis_url: str, namespace: str) -> Counter[str]:
    client = aioredis.Redis.from_url(redis_url)
    try:
        entries = await client.xrange(f"{namespace}:tasks")
    finally:
        await client.aclose()
    counts: Counter[str] = Counter()
    for _, fields in entries:
        message = orjson.loads(fields[b"data"])
        if message["task_name"] == "bms.run_job":
            counts[message["args"][0]] += 1
    return counts


@pytest.mark.e2e
async def test_two_scheduler_processes_one_active_and_takeover(
    store: Store, settings: Settings, tmp_path: Any
) -> None:
    if not settings.redis_url:
        pytest.skip("the advisory-lock lease needs PostgreSQL (SQLite runs in-process)")
    namespace = f"{settings.channel_namespace}:sched"
    env = process_env(
        settings, redis_namespace=namespace, scheduler_poll_secs=0.1,
        job_email_sweep_interval_secs=1, job_series_interval_secs=3600,
        job_escalation_interval_secs=3600, job_reminders_interval_secs=3600,
        job_retention_interval_secs=3600,
    )  # fmt: skip
    first, second = await start("scheduler", env), await start("scheduler", env)
    children = [first, second]
    try:

        async def one_active() -> bool:
            return sum(c.saw("scheduler is active") for c in children) == 1

        await wait_until(one_active, timeout=60)  # two processes starting on a loaded machine
        leader = first if first.saw("scheduler is active") else second
        standby = second if leader is first else first
        await asyncio.sleep(2.2)  # a window of whole periods to count runs in
        counts = await _kicks(settings.redis_url, namespace)
        assert counts["materialize_series"] == 1 and counts["retention"] == 1
        assert 2 <= counts["email_sweep"] <= 4, counts  # ~1 per second, never doubled

        async def standby_named_the_leader() -> bool:  # it said so at start, naming the holder
            return any(
                "scheduler is standby" in line and f":{leader.proc.pid}" in line
                for line in standby.lines
            )

        await wait_until(standby_named_the_leader, timeout=10)

        await leader.stop(signal.SIGKILL)

        async def took_over() -> bool:
            return standby.saw("scheduler is active")

        await wait_until(took_over, timeout=10)
        before = (await _kicks(settings.redis_url, namespace))["email_sweep"]

        async def kicking() -> bool:
            return (await _kicks(settings.redis_url, namespace))["email_sweep"] >= before + 2

        await wait_until(kicking, timeout=5)
        after = await _kicks(settings.redis_url, namespace)
        assert after["materialize_series"] == 1  # not re-run by the new leader
    finally:
        for child in children:
            await child.stop()
    async with store.connection() as conn:
        rows = await conn.fetch_all(sa.select(job_runs.c.job))
    assert {r[0] for r in rows} >= {"email_sweep", "materialize_series"}


async def test_advisory_lease_is_exclusive_and_passes_on(store: Store) -> None:
    if not store.is_postgres:
        pytest.skip("SQLite runs one in-process scheduler")
    url = str(store.database.url)
    first, second = LeaderLease(url, key=0x7E57), LeaderLease(url, key=0x7E57)
    try:
        assert await first.acquire_or_keep() is True
        assert await second.acquire_or_keep() is False
        assert await first.acquire_or_keep() is True  # keeps it
        await first.release()  # the leader dies: its connection closes
        assert await second.acquire_or_keep() is True
        assert await first.acquire_or_keep() is False
    finally:
        await first.release()
        await second.release()
