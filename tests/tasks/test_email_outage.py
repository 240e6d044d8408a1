"""Issue #11 §1: an SMTP outage of minutes loses no email; a 5xx answer fails one at once.

The outage is compressed through settings (retry base, cap and horizon), not by patching
code: the SMTP server (aiosmtpd) answers 451 to every message for far more attempts than
the old fixed retry count allowed, then recovers.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from db.store import Store
from db.tables import emails
from domain import emails as outbox
from tasks.runtime import TaskRuntime
from tests.tasks.conftest import Mailbox, wait_until

EMAILS = 8
ATTEMPTS_DURING_OUTAGE = 4  # each email is refused at least this often before recovery


async def _statuses(store: Store, ids: list[int]) -> dict[int, tuple[str, int]]:
    async with store.connection() as conn:
        rows = await conn.fetch_all(
            sa.select(emails.c.id, emails.c.status, emails.c.attempts).where(emails.c.id.in_(ids))
        )
    return {row[0]: (row[1], row[2]) for row in rows}


async def test_outage_loses_nothing_and_sends_each_once(
    login: Any, store: Store, mailbox: Mailbox, worker: TaskRuntime
) -> None:
    mailbox.answer = "451 4.3.0 Mail server temporarily unavailable"
    manager = await login("manager")
    ids = []
    for n in range(EMAILS):
        body = {"to": [f"ops{n}@example.com"], "subject": f"Outage {n}", "body": "x"}
        ids.append((await manager.post("/api/send-email/", json=body)).json()["id"])

    async def refused_often() -> bool:
        """Every email refused that often, none of them mid-attempt: an attempt counts when
        it starts, so one still `sending` could be answered after the recovery below."""
        states = await _statuses(store, ids)
        return all(
            status == "queued" and attempts >= ATTEMPTS_DURING_OUTAGE
            for status, attempts in states.values()
        )

    await wait_until(refused_often, timeout=60, every=0.05)
    assert {status for status, _ in (await _statuses(store, ids)).values()} <= {
        "queued",
        "sending",
    }
    mailbox.answer = None  # the server is back

    async def all_sent() -> bool:
        return all(status == "sent" for status, _ in (await _statuses(store, ids)).values())

    await wait_until(all_sent, timeout=60, every=0.05)
    for n in range(EMAILS):
        assert len(mailbox.with_subject(f"Outage {n}")) == 1
    detail = (await manager.get(f"/api/emails/{ids[0]}/")).json()
    assert detail["status"] == "sent" and detail["attempts"] > ATTEMPTS_DURING_OUTAGE


async def test_permanent_answer_fails_at_once(
    login: Any, store: Store, mailbox: Mailbox, worker: TaskRuntime
) -> None:
    mailbox.answer = "550 5.1.1 Mailbox unavailable"
    manager = await login("manager")
    body = {"to": ["nobody@example.com"], "subject": "Bounce", "body": "x"}
    email_id = (await manager.post("/api/send-email/", json=body)).json()["id"]

    async def failed() -> bool:
        return (await _statuses(store, [email_id]))[email_id][0] == "failed"

    await wait_until(failed, timeout=20)
    detail = (await manager.get(f"/api/emails/{email_id}/")).json()
    assert detail["attempts"] == 1 and "550" in detail["error"]
    assert mailbox.arrived == 1


async def test_metrics_read_the_outbox(client: Any, store: Store, clock: Any) -> None:
    with store.sink.plugged(enqueue=None):  # nothing sends them
        async with store.unit_of_work(actor_id=None) as uow:
            for subject in ("One", "Two", "Three"):
                await outbox.queue_email(
                    uow, to=["a@example.com"], subject=subject, body="", requested_by=None
                )
    async with store.connection() as conn:
        await conn.execute(emails.update().where(emails.c.subject == "Three")
                           .values(status="failed"))  # fmt: skip
    clock.advance(seconds=90)
    text = (await client.get("/metrics")).text
    assert 'bms_email_outbox_messages{status="queued"} 2.0' in text
    assert 'bms_email_outbox_messages{status="failed"} 1.0' in text
    assert "bms_email_outbox_oldest_age_seconds 90.0" in text
    assert "bms_emails_failed_total 1.0" in text
