"""A real `bms worker` killed with SIGKILL mid-send: after a restart the email arrives once."""

from __future__ import annotations

import signal
import threading
from typing import Any

import pytest
import sqlalchemy as sa

from bms.settings import Settings
from db.store import Store
from db.tables import emails
from tests.tasks.conftest import Mailbox, wait_until
from tests.tasks.processes import process_env, start


@pytest.mark.e2e
async def test_sigkilled_worker_email_arrives_exactly_once(
    login: Any, store: Store, settings: Settings, mailbox: Mailbox
) -> None:
    if not settings.redis_url:
        pytest.skip("embedded mode has no separate worker process")
    env = process_env(settings)
    mailbox.hold = threading.Event()
    mailbox.hold.set()  # the SMTP server sits on DATA: the worker is mid-send when killed
    manager = await login("manager")
    body = {"to": ["crash@example.com"], "subject": "Crash test", "body": "once"}
    email_id = (await manager.post("/api/send-email/", json=body)).json()["id"]

    first = await start("worker", env)
    try:

        async def mid_send() -> bool:
            return mailbox.arrived >= 1

        await wait_until(mid_send, timeout=15)
        await first.stop(signal.SIGKILL)
    finally:
        await first.stop()
    mailbox.hold.clear()  # the dead worker's transaction is answered 451, never delivered

    second = await start("worker", env)
    try:

        async def sent() -> bool:
            async with store.connection() as conn:
                status = await conn.fetch_val(
                    sa.select(emails.c.status).where(emails.c.id == email_id)
                )
            return status == "sent"

        await wait_until(sent, timeout=20)
    finally:
        await second.stop()
    assert second.saw("worker started")
    assert len(mailbox.with_subject("Crash test")) == 1
    detail = (await manager.get(f"/api/emails/{email_id}/")).json()
    assert detail["status"] == "sent" and detail["attempts"] == 2


@pytest.mark.e2e
async def test_worker_honours_concurrency_and_logs_one_line_per_retry(
    login: Any, store: Store, settings: Settings, mailbox: Mailbox
) -> None:
    """WORKER_CONCURRENCY is used (the CLI default no longer overrides it), and an SMTP
    outage logs one line per retry with the attempt and the next try, no tracebacks."""
    if not settings.redis_url:
        pytest.skip("embedded mode has no separate worker process")
    mailbox.answer = "451 4.3.0 Try again later"
    worker = await start("worker", process_env(settings, worker_concurrency=7))
    try:
        manager = await login("manager")
        body = {"to": ["ops@example.com"], "subject": "Quiet", "body": "x"}
        email_id = (await manager.post("/api/send-email/", json=body)).json()["id"]

        async def retried() -> bool:
            async with store.connection() as conn:
                attempts = await conn.fetch_val(
                    sa.select(emails.c.attempts).where(emails.c.id == email_id)
                )
            return attempts >= 3 and worker.saw("attempt=3")

        await wait_until(retried, timeout=30)
    finally:
        await worker.stop()
    assert worker.saw("worker started") and worker.saw("concurrency=7"), worker.lines
    retries = [line for line in worker.lines if "will retry" in line]
    assert len(retries) >= 2 and all("next_try_in_secs=" in line for line in retries)
    assert not worker.saw("Traceback"), "\n".join(worker.lines)
