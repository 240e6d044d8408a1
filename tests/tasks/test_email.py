"""POST /api/send-email/ → outbox → worker → real SMTP server, exactly once."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import sqlalchemy as sa

from db.store import Store
from db.tables import emails
from domain import emails as outbox
from domain.email_delivery import email_state
from domain.emails import is_valid_address
from tasks.config import TaskSettings
from tasks.email import SendFailed, deliver
from tasks.runtime import TaskRuntime
from tests.tasks.conftest import Mailbox, wait_until


async def _status(store: Store, email_id: int) -> str:
    async with store.connection() as conn:
        return await conn.fetch_val(sa.select(emails.c.status).where(emails.c.id == email_id))


async def test_manager_sends_email_delivered_once(
    login: Any, store: Store, mailbox: Mailbox, worker: TaskRuntime
) -> None:
    manager = await login("manager")
    body = {"to": ["ops@example.com", "eng@example.org"], "subject": "Hello", "body": "Text"}
    response = await manager.post("/api/send-email/", json=body)
    assert response.status_code == 202, response.text
    email_id = response.json()["id"]
    assert response.json() == {"id": email_id, "status": "queued"}

    async def sent() -> bool:
        return await _status(store, email_id) == "sent"

    await wait_until(sent)
    detail = (await manager.get(f"/api/emails/{email_id}/")).json()
    assert detail["status"] == "sent" and detail["attempts"] == 1 and detail["error"] is None
    assert detail["to"] == body["to"] and detail["sent_at"]
    [message] = mailbox.with_subject("Hello")
    assert message["X-Envelope-To"] == "ops@example.com,eng@example.org"
    async with store.connection() as conn:
        key = await conn.fetch_val(
            sa.select(emails.c.idempotency_key).where(emails.c.id == email_id)
        )
    assert message["Message-ID"].startswith(f"<{key}@")


async def test_task_running_twice_sends_once(
    login: Any, store: Store, mailbox: Mailbox, worker: TaskRuntime
) -> None:
    manager = await login("manager")
    body = {"to": ["a@example.com"], "subject": "Twice", "body": "x"}
    email_id = (await manager.post("/api/send-email/", json=body)).json()["id"]
    # Duplicate deliveries of the same task, concurrently and afterwards.
    await asyncio.gather(*(worker.send_email.kiq(email_id) for _ in range(3)))

    async def sent() -> bool:
        return await _status(store, email_id) == "sent"

    await wait_until(sent)
    runtime_result = await deliver(store, worker.settings, worker.backend, email_id)
    assert runtime_result == "sent"
    assert len(mailbox.with_subject("Twice")) == 1


async def test_only_managers_and_admins_send(login: Any, mailbox: Mailbox) -> None:
    body = {"to": ["a@example.com"], "subject": "S", "body": "B"}
    operator = await login("operator")
    assert (await operator.post("/api/send-email/", json=body)).status_code == 403
    admin = await login("admin")
    email_id = (await admin.post("/api/send-email/", json=body)).json()["id"]
    assert (await operator.get(f"/api/emails/{email_id}/")).status_code == 403
    assert (await admin.get(f"/api/emails/{email_id}/")).status_code == 200


async def test_recipients_validated(login: Any) -> None:
    manager = await login("manager")
    for to in ([], ["not-an-address"], ["a@b.c\r\nBcc: x@y.zz"], "a@example.com", [1]):
        response = await manager.post(
            "/api/send-email/", json={"to": to, "subject": "S", "body": ""}
        )
        assert response.status_code == 400, (to, response.text)
        assert "to" in response.json()
    response = await manager.post("/api/send-email/", json={"to": ["a@example.com"], "body": ""})
    assert response.status_code == 400 and "subject" in response.json()
    header_injection = {"to": ["a@example.com"], "subject": "x\nBcc: y@example.com", "body": ""}
    assert (await manager.post("/api/send-email/", json=header_injection)).status_code == 400
    assert (await manager.get("/api/emails/999999/")).status_code == 404


def test_address_rules() -> None:
    assert is_valid_address("first.last+tag@sub.example.co.uk")
    for bad in ("", "a@b", "a@@b.cc", "<a@b.cc>", "Name <a@b.cc>", "a@b.cc,c@d.ee", "a b@c.dd"):
        assert not is_valid_address(bad), bad


class _FailingBackend:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    async def send(self, message: Any) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionRefusedError("smtp down")


async def test_retries_until_the_horizon_is_spent_then_fails(
    store: Store, task_settings: TaskSettings, clock: Any
) -> None:
    """Each failure parks the email until its next try; past the horizon it fails for good."""
    settings = replace(
        task_settings,
        email_retry_horizon_secs=5.0,
        email_retry_base_secs=0.5,
        email_retry_max_secs=2.0,
    )
    with store.sink.plugged(enqueue=None):  # drive the task by hand
        async with store.unit_of_work(actor_id=None) as uow:
            queued = await outbox.queue_email(
                uow, to=["a@example.com"], subject="Fails", body="x", requested_by=None
            )
    email_id = queued["id"]
    backend = _FailingBackend(failures=10**6)
    start = clock.now
    while True:
        try:
            status = await deliver(store, settings, backend, email_id)
        except SendFailed as exc:
            assert "smtp down" in str(exc)
            assert 0 <= exc.retry_after_secs <= settings.email_retry_max_secs
            state = await email_state(store, email_id=email_id)
            assert state is not None and state.status == "queued"
            assert state.attempts == backend.calls
            if exc.retry_after_secs > 0.01:
                assert await deliver(store, settings, backend, email_id) == "queued"  # not due
            clock.advance(seconds=exc.retry_after_secs)
            continue
        assert status == "failed"
        break
    assert (clock.now - start).total_seconds() <= settings.email_retry_horizon_secs
    assert backend.calls >= 4  # tries until the horizon, not a fixed count
    state = await email_state(store, email_id=email_id)
    assert state is not None and state.status == "failed"
    assert await deliver(store, settings, backend, email_id) == "failed"
    assert backend.calls == state.attempts


async def test_retry_middleware_backs_off_then_sends(
    login: Any, store: Store, mailbox: Mailbox, worker: TaskRuntime
) -> None:
    """The first SMTP attempt is refused (451); the retry middleware sends it again."""
    import threading

    mailbox.hold = threading.Event()
    mailbox.hold.set()
    manager = await login("manager")
    body = {"to": ["a@example.com"], "subject": "Retry", "body": "x"}
    email_id = (await manager.post("/api/send-email/", json=body)).json()["id"]

    async def first_arrived() -> bool:
        return mailbox.arrived >= 1

    await wait_until(first_arrived)
    mailbox.hold.clear()  # the held DATA now answers 451; the retry is accepted

    async def sent() -> bool:
        return await _status(store, email_id) == "sent"

    await wait_until(sent)
    detail = (await manager.get(f"/api/emails/{email_id}/")).json()
    assert detail["attempts"] == 2
    assert len(mailbox.with_subject("Retry")) == 1
