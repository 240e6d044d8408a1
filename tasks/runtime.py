"""The task runtime of one process: broker + registered tasks bound to this process's store."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import structlog
from taskiq import AsyncBroker, AsyncTaskiqDecoratedTask

from bms.settings import Settings
from db.store import Store
from domain import emails
from tasks.broker import make_broker
from tasks.email import Backend, deliver, make_backend
from tasks.jobs import job_named

log = structlog.get_logger("bms.tasks")

SEND_EMAIL = "bms.send_email"
RUN_JOB = "bms.run_job"
NOOP = "bms.noop"


@dataclass
class TaskRuntime:
    """Built per process (server, worker, scheduler); nothing happens at import time."""

    settings: Settings
    store: Store
    broker: AsyncBroker = field(init=False)
    backend: Backend = field(init=False)
    send_email: AsyncTaskiqDecoratedTask[[int], str] = field(init=False)
    run_job: AsyncTaskiqDecoratedTask[[str], dict[str, Any]] = field(init=False)
    noop: AsyncTaskiqDecoratedTask[[], None] = field(init=False)
    _dispatching: bool = field(init=False, default=False)
    _previous: emails.EmailDispatcher | None = field(init=False, default=None)

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
            log.info("job finished", job=name, result=result)
            return result

        async def noop() -> None:
            """Do nothing: measures the queue itself (bench/tasks.py)."""

        self.send_email = self.broker.register_task(send_email, task_name=SEND_EMAIL)
        self.run_job = self.broker.register_task(run_job, task_name=RUN_JOB)
        self.noop = self.broker.register_task(noop, task_name=NOOP, retry=False)

    async def enqueue_email(self, email_id: int) -> None:
        await self.send_email.kiq(email_id)

    async def startup(self, *, worker: bool, dispatch: bool = True) -> None:
        """Start the broker; with `dispatch`, emails committed through the store go through it."""
        self.broker.is_worker_process = worker
        await self.broker.startup()
        self._dispatching = dispatch
        if dispatch:
            self._previous = emails.set_dispatcher(self.store, self.enqueue_email)

    async def shutdown(self) -> None:
        await emails.drain_dispatches()
        if self._dispatching:
            emails.set_dispatcher(self.store, self._previous)
        await self.broker.shutdown()
