"""Fixtures for tasks: a real SMTP server, an app without the embedded scheduler, a worker."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from redis import asyncio as aioredis
from starlette.applications import Starlette
from taskiq.receiver import Receiver

from api.app import create_app
from bms.settings import Settings
from realtime.service import realtime_component
from tasks.component import task_component
from tasks.config import TaskSettings
from tasks.runtime import TaskRuntime
from tests.conftest import make_settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def wait_until(
    predicate: Callable[[], Awaitable[bool]], timeout: float = 10.0, every: float = 0.02
) -> None:
    """Poll a condition another task or process makes true; fail after `timeout`."""
    async with asyncio.timeout(timeout):
        while not await predicate():
            await asyncio.sleep(every)


@dataclass
class Mailbox:
    """aiosmtpd handler: records accepted mail; `hold` makes DATA wait (a hung server)."""

    messages: list[Message] = field(default_factory=list)
    hold: Any = None  # threading.Event: while set, DATA blocks until it is cleared
    arrived: int = 0  # DATA commands seen, including held ones
    answer: str | None = None  # e.g. "451 ..." (an outage) or "550 ..." answered to DATA

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.arrived += 1
        if self.answer is not None:
            return self.answer
        if self.hold is not None and self.hold.is_set():
            deadline = time.monotonic() + 30
            while self.hold.is_set() and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            return "451 Requested action aborted: try again"
        message = message_from_bytes(envelope.content)
        message["X-Envelope-To"] = ",".join(envelope.rcpt_tos)
        self.messages.append(message)
        return "250 OK"

    def with_subject(self, subject: str) -> list[Message]:
        return [m for m in self.messages if m["Subject"] == subject]


@pytest.fixture(scope="session")
def smtp() -> Any:
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller
    finally:
        controller.stop()


@pytest.fixture
def mailbox(smtp: Any) -> Mailbox:
    box: Mailbox = smtp.handler
    box.messages.clear()
    box.hold = None
    box.arrived = 0
    box.answer = None
    return box


TASK_OVERRIDES: dict[str, Any] = {
    "smtp_host": "127.0.0.1",
    "smtp_start_tls": False,
    "smtp_timeout_secs": 2.0,
    "email_lease_secs": 3.0,
    "task_retry_base_secs": 0.05,
    "task_retry_max_secs": 0.2,
    "task_reclaim_idle_secs": 1.0,
    # Retries fast, over a horizon no test's fake clock reaches unless it means to.
    "email_retry_base_secs": 0.05,
    "email_retry_max_secs": 0.2,
    "email_retry_horizon_secs": 600.0,
}


@pytest.fixture(scope="session")
def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory, smtp: Any) -> Settings:
    return make_settings(
        database_url,
        tmp_path_factory.mktemp("tasks-data"),
        smtp_port=smtp.port,
        **TASK_OVERRIDES,
    )


@pytest.fixture(scope="session")
def task_settings(settings: Settings) -> TaskSettings:
    """What the composition root hands to tasks/ for these settings."""
    return settings.task_settings()


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[Starlette]:
    """The app as `bms serve` builds it, minus the embedded scheduler (tests drive jobs)."""
    tasks = task_component(settings.task_settings(), scheduler=False)
    application = create_app(
        settings, components=[realtime_component(settings.realtime_settings()), tasks]
    )
    async with application.router.lifespan_context(application):
        yield application
    if settings.redis_url:  # streams, retries and results of this run
        client = aioredis.Redis.from_url(settings.redis_url)
        keys = [k async for k in client.scan_iter(match=f"{settings.channel_namespace}:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@pytest.fixture
async def worker(app: Starlette, settings: Settings) -> AsyncIterator[TaskRuntime]:
    """A worker consuming the Redis stream in this process (embedded: the app's own broker)."""
    if not settings.redis_url:
        yield app.state.tasks
        running = list(app.state.tasks.broker._running_tasks)
        _, late = await asyncio.wait(running, timeout=1) if running else (set(), set())
        for task in late:  # retries parked behind a lease: the next test truncates their rows
            task.cancel()
        return
    runtime = TaskRuntime(settings.task_settings(), app.state.store)
    await runtime.startup(worker=True)  # the app's runtime enqueues
    receiver = Receiver(
        runtime.broker, max_async_tasks=20, run_startup=False, propagate_exceptions=False
    )
    stop = asyncio.Event()
    listening = asyncio.create_task(receiver.listen(stop))
    try:
        yield runtime
    finally:
        stop.set()
        await asyncio.wait_for(listening, 10)
        await runtime.shutdown()


class FakeClock:
    """A settable clock installed as `store.clock`: jobs see time move without sleeping."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock(store: Any) -> Any:
    original = store.clock
    fake = FakeClock(datetime(2026, 3, 2, 12, tzinfo=UTC))
    store.clock = fake
    try:
        yield fake
    finally:
        store.clock = original
