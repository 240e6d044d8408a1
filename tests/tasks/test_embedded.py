"""Embedded mode: `bms serve` runs the scheduler and the tasks in its own process."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from starlette.applications import Starlette

from bms.settings import Settings
from db.store import Store
from db.tables import job_runs
from tasks.component import task_component
from tasks.jobs import all_jobs
from tests.tasks.conftest import wait_until


async def test_embedded_component_runs_every_job(store: Store, settings: Settings) -> None:
    if settings.redis_url:
        pytest.skip("with REDIS_URL the server only enqueues; workers and a scheduler run jobs")
    stub = Starlette()
    stub.state.store = store
    fast = settings.model_copy(update={"scheduler_poll_secs": 0.05, "scheduler_embedded": True})
    async with task_component(fast.task_settings())(stub):

        async def all_ran() -> bool:
            async with store.connection() as conn:
                rows = await conn.fetch_all(sa.select(job_runs.c.job))
            return {r[0] for r in rows} == {job.name for job in all_jobs(settings.task_settings())}

        await wait_until(all_ran)
        await stub.state.tasks.broker.wait_all()
