"""The task runtime of one process: broker + registered tasks bound to this process's store."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

import structlog
from taskiq import AsyncBroker, AsyncTaskiqDecoratedTask

from db.effects import QueuedTask
from db.store import Store
from domain.emails import SEND_EMAIL_TASK
from tasks.broker import make_broker
from tasks.config import TaskSettings
from tasks.email import Backend, deliver, make_backend
from tasks.jobs import job_named
from tasks.retry_later import hide_expected_retries
from tasks.scheduler import record_success

log = structlog.get_logger("bms.tasks")

# Enqueueing runs after a request's commit: never let a slow Redis hold it up.
ENQUEUE_TIMEOUT_SECS = 1.0

SEND_EMAIL = SEND_EMAIL_TASK
RUN_JOB = "bms.run_job"
EMAIL_TASK_MAX_RETRIES = 1_000_000
NOOP = "bms.noop"


@dataclass
class TaskRuntime:
    """Built per process (server, worker, scheduler); nothing happens at import time."""

    settings: TaskSettings
    store: Store
    broker: AsyncBroker = field(init=False)
    backend: Backend = field(init=False)
    send_email: AsyncTaskiqDecoratedTask[[int], Coroutine[Any, Any, str]] = field(init=False)
    run_job: AsyncTaskiqDecoratedTask[[str], Coroutine[Any, Any, dict[str, Any]]] = field(
        init=False
    )
    noop: AsyncTaskiqDecoratedTask[[], Coroutine[Any, Any, None]] = field(init=False)
    # Enqueues still in flight: the request that committed does not wait for Redis.
    _in_flight: set[asyncio.Task[None]] = field(init=False, default_factory=set)

    def __post_init__(self) -> None:
        self.broker = make_broker(self.settings)
        self.backend = make_backend(self.settings)
        self._register()

    def _register(self) -> None:
        runtime = self

        async def send_email(email_id: int) -> str:
            """Deliver one outbox email (idempotent)."""
            return await deliver(runtime.store, runtime.settings, runtime.backend, email_id)

        async def run_job(name: str) -> dict[str, Any]:
            """Run one recurring job by name (kicked by the scheduler)."""
            result = await job_named(runtime.settings, name).run(runtime.store, runtime.settings)
            await record_success(runtime.store, job=name)
            log.info("job finished", job=name, result=result)
            return result

        async def noop() -> None:
            """Do nothing: measures the queue itself (bench/tasks.py)."""

        # The email's retry horizon, not a retry count, decides when it fails (tasks/email.py).
        self.send_email = self.broker.register_task(
            send_email, task_name=SEND_EMAIL, max_retries=EMAIL_TASK_MAX_RETRIES
        )
        self.run_job = self.broker.register_task(run_job, task_name=RUN_JOB)
        self.noop = self.broker.register_task(noop, task_name=NOOP, retry=False)

    async def enqueue_email(self, email_id: int) -> None:
        await self.send_email.kiq(email_id)

    async def enqueue(self, task: QueuedTask) -> None:
        """After-commit end of the effect sink: kick `task` in the background.

        The committed row already guarantees the work is not lost (the outbox sweep
        enqueues it again), so the committing request never waits for the broker.
        """
        kick = asyncio.get_running_loop().create_task(self.kick(task))
        self._in_flight.add(kick)
        kick.add_done_callback(self._in_flight.discard)

    async def kick(self, task: QueuedTask) -> None:
        """Enqueue now; on failure log it (the row stays queued and the sweep retries it)."""
        registered = self.broker.find_task(task.name)
        if registered is None:
            raise LookupError(f"no task named {task.name!r} is registered")
        try:
            async with asyncio.timeout(ENQUEUE_TIMEOUT_SECS):
                await registered.kiq(*task.args)
        except Exception as exc:  # a committed write never fails because the queue did
            log.warning("enqueue failed; the sweep will retry", task=task.name, error=str(exc))

    async def drain(self, timeout_secs: float = ENQUEUE_TIMEOUT_SECS) -> None:
        """Let enqueues in flight finish (before the broker shuts down)."""
        if self._in_flight:
            await asyncio.wait(list(self._in_flight), timeout=timeout_secs)

    async def startup(self, *, worker: bool) -> None:
        """Start the broker (the composition root plugs `enqueue` into the effect sink)."""
        self.broker.is_worker_process = worker
        if worker:
            hide_expected_retries()
        await self.broker.startup()

    async def shutdown(self) -> None:
        await self.drain()
        await self.broker.shutdown()
