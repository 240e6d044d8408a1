"""The app component: enqueue from requests; in embedded mode also run tasks and schedules."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from starlette.applications import Starlette

from tasks.config import TaskSettings
from tasks.jobs import Job, all_jobs
from tasks.runtime import TaskRuntime
from tasks.scheduler import Scheduler


def task_component(
    settings: TaskSettings, *, scheduler: bool = True
) -> Callable[[Starlette], AbstractAsyncContextManager[None]]:
    """With REDIS_URL the server only enqueues; without it, tasks (and jobs) run in-process."""

    @asynccontextmanager
    async def component(app: Starlette) -> AsyncIterator[None]:
        runtime = TaskRuntime(settings, app.state.store)
        in_process = not settings.redis_url
        await runtime.startup(worker=in_process)
        app.state.tasks = runtime
        stop = asyncio.Event()
        scheduler_task: asyncio.Task[None] | None = None
        if in_process and scheduler and settings.scheduler_embedded:

            async def kick(job: Job) -> None:
                await runtime.run_job.kiq(job.name)

            jobs = Scheduler(
                app.state.store, all_jobs(settings), kick, poll_secs=settings.scheduler_poll_secs
            )
            scheduler_task = asyncio.create_task(jobs.run(stop), name="bms-scheduler")
        try:
            yield
        finally:
            stop.set()
            if scheduler_task is not None:
                await scheduler_task
            await runtime.shutdown()

    return component
