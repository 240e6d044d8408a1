"""Issue #11 §4: the duplicate window is one round trip. A live sender keeps its short
lease however long the SMTP exchange takes; a 250 is recorded even across a database cut."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace
from email.message import EmailMessage
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from db.store import Store
from db.tables import emails
from domain import emails as outbox
from tasks.config import TaskSettings
from tasks.email import EmailBusy, SendFailed, SMTPBackend, deliver
from tests.tasks.conftest import Mailbox, wait_until

TERMINATE_OWN_BACKENDS = """
SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid()
"""


async def _queued(store: Store, subject: str) -> int:
    with store.sink.plugged(enqueue=None):  # the test drives delivery itself
        async with store.unit_of_work(actor_id=None) as uow:
            queued = await outbox.queue_email(
                uow, to=["ops@example.com"], subject=subject, body="x", requested_by=None
            )
    return int(queued["id"])


async def _row(store: Store, email_id: int) -> Any:
    async with store.connection() as conn:
        return await conn.fetch_one(sa.select(emails).where(emails.c.id == email_id))


async def test_a_live_sender_keeps_its_lease(
    store: Store, task_settings: TaskSettings, mailbox: Mailbox, clock: Any
) -> None:
    # The SMTP client waits longer than the lease lasts, however loaded the machine is.
    task_settings = replace(task_settings, smtp_timeout_secs=20.0)
    email_id = await _queued(store, "Slow server")
    mailbox.hold = threading.Event()
    mailbox.hold.set()  # the server sits on DATA longer than the lease
    sending = asyncio.create_task(
        deliver(store, task_settings, SMTPBackend(task_settings), email_id)
    )
    try:

        async def mid_send() -> bool:
            return mailbox.arrived >= 1

        await wait_until(mid_send, timeout=10)
        clock.advance(seconds=task_settings.email_lease_secs + 1)  # the lease would be over

        async def renewed() -> bool:
            return (await _row(store, email_id))["updated_at"] == clock.now

        await wait_until(renewed, timeout=task_settings.email_lease_secs * 2)
        with pytest.raises(EmailBusy):  # another worker does not send it a second time
            await deliver(store, task_settings, SMTPBackend(task_settings), email_id)
    finally:
        mailbox.hold.clear()  # the held DATA is answered 451
        with pytest.raises(SendFailed):
            await sending
    assert mailbox.arrived == 1


class CutAfterAcceptance:
    """The SMTP server accepts, then every connection to the test database is cut."""

    def __init__(self, inner: SMTPBackend, database_url: str) -> None:
        self.inner = inner
        self.dsn = make_url(database_url).set(drivername="postgresql")

    async def send(self, message: EmailMessage) -> None:
        await self.inner.send(message)
        killer = await asyncpg.connect(self.dsn.render_as_string(hide_password=False))
        try:
            await killer.fetchval(TERMINATE_OWN_BACKENDS)  # this test database's only
        finally:
            await killer.close()


async def test_acceptance_is_recorded_across_a_database_cut(
    store: Store, task_settings: TaskSettings, mailbox: Mailbox, backend: str
) -> None:
    if backend != "postgres":
        pytest.skip("terminating server backends is a PostgreSQL scenario")
    email_id = await _queued(store, "Cut after 250")
    cutting = CutAfterAcceptance(SMTPBackend(task_settings), task_settings.database_url)
    assert await deliver(store, task_settings, cutting, email_id) == "sent"
    row = await _row(store, email_id)
    assert row["status"] == "sent" and row["attempts"] == 1
    assert len(mailbox.with_subject("Cut after 250")) == 1
