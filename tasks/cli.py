"""Entry points for `bms worker` and `bms scheduler` (their commands live in bms.cli)."""

from __future__ import annotations

import asyncio
import dataclasses
import signal
from collections.abc import Coroutine
from typing import Any

import structlog
from taskiq.receiver import Receiver

from db.store import Store
from tasks.config import TaskSettings
from tasks.jobs import Job, all_jobs
from tasks.runtime import TaskRuntime
from tasks.scheduler import Scheduler

log = structlog.get_logger("bms.tasks")
SHUTDOWN_GRACE_SECS = 30.0


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


def _has_redis(settings: TaskSettings, command: str) -> bool:
    if not settings.redis_url:
        print(f"bms {command}: REDIS_URL is not set; in embedded mode `bms serve` runs it.")
        return False
    return True


async def worker_main(settings: TaskSettings) -> None:
    """Consume the task stream until SIGTERM/SIGINT; unfinished messages are redelivered."""
    store = Store(settings.database_url, fast_paths=settings.fast_paths)
    await store.connect()
    runtime = TaskRuntime(settings, store)
    try:
        await runtime.startup(worker=True)
        # Jobs' after-commit tasks (emails) go to the broker; events: the servers' relay.
        store.sink.enqueue = runtime.enqueue
        receiver = Receiver(
            runtime.broker,
            max_async_tasks=settings.worker_concurrency,
            run_startup=False,
            propagate_exceptions=False,
            wait_tasks_timeout=SHUTDOWN_GRACE_SECS,
        )
        log.info("worker started", concurrency=settings.worker_concurrency)
        await receiver.listen(_stop_on_signals())
    finally:
        await runtime.shutdown()
        await store.disconnect()


async def scheduler_main(settings: TaskSettings) -> None:
    """Kick recurring jobs while holding the lease; stand by otherwise."""
    store = Store(settings.database_url, fast_paths=settings.fast_paths)
    await store.connect()
    runtime = TaskRuntime(settings, store)
    try:
        await runtime.startup(worker=False)
        store.sink.enqueue = runtime.enqueue

        async def kick(job: Job) -> None:
            await runtime.run_job.kiq(job.name)

        scheduler = Scheduler(
            store, all_jobs(settings), kick, poll_secs=settings.scheduler_poll_secs
        )
        log.info("scheduler started", jobs=[job.name for job in scheduler.jobs])
        await scheduler.run(_stop_on_signals())
    finally:
        await runtime.shutdown()
        await store.disconnect()


def _run(main: Coroutine[Any, Any, None]) -> None:
    """uvloop when installed (it comes with uvicorn[standard]): ~1.5x the task throughput."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    uvloop.run(main)


def run_worker(settings: TaskSettings, *, concurrency: int | None = None) -> int:
    """`bms worker [--concurrency N]`: returns the process exit code."""
    if not _has_redis(settings, "worker"):
        return 2
    if concurrency:
        settings = dataclasses.replace(settings, worker_concurrency=concurrency)
    _run(worker_main(settings))
    return 0


def run_scheduler(settings: TaskSettings) -> int:
    """`bms scheduler`: returns the process exit code."""
    if not _has_redis(settings, "scheduler"):
        return 2
    _run(scheduler_main(settings))
    return 0
