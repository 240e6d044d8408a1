"""The outbox: enqueue only after commit, never fail a committed write, sweep lost enqueues."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from bms.settings import Settings
from db.effects import QueuedTask
from db.store import Store
from db.tables import emails
from domain import emails as outbox
from tasks.config import TaskSettings
from tasks.jobs import email_sweep
from tests.tasks.conftest import FakeClock, Mailbox, wait_until


@pytest.fixture
def recorded(store: Store) -> Any:
    """Plug an enqueue end into the store's sink that records what it was asked, and when."""
    calls: list[tuple[int, str | None]] = []

    async def record(task: QueuedTask) -> None:
        assert task.name == outbox.SEND_EMAIL_TASK
        (email_id,) = task.args
        async with store.connection() as conn:  # a separate connection sees only committed rows
            status = await conn.fetch_val(sa.select(emails.c.status).where(emails.c.id == email_id))
        calls.append((email_id, status))

    with store.sink.plugged(enqueue=record):
        yield calls


async def _queue(store: Store, subject: str = "S", fail: bool = False) -> int:
    class Boom(Exception):
        pass

    try:
        async with store.unit_of_work(actor_id=None) as uow:
            queued = await outbox.queue_email(
                uow, to=["a@example.com"], subject=subject, body="", requested_by=None
            )
            if fail:
                raise Boom
    except Boom:
        pass
    return queued["id"]


async def test_enqueued_only_after_commit(store: Store, recorded: list[Any]) -> None:
    await _queue(store, fail=True)
    committed = await _queue(store)
    # One enqueue (the rolled-back email never got one), made once the row was visible.
    assert recorded == [(committed, "queued")]


async def test_failing_queue_never_fails_the_request(login: Any, store: Store) -> None:
    async def broken(task: QueuedTask) -> None:
        raise ConnectionError("redis is down")

    with store.sink.plugged(enqueue=broken):
        manager = await login("manager")
        body = {"to": ["a@example.com"], "subject": "S", "body": ""}
        response = await manager.post("/api/send-email/", json=body)
    assert response.status_code == 202
    assert (await manager.get(f"/api/emails/{response.json()['id']}/")).json()["status"] == "queued"


async def test_sweep_requeues_lost_and_abandoned_and_fails_exhausted(
    store: Store,
    settings: Settings,
    task_settings: TaskSettings,
    clock: FakeClock,
    recorded: list[Any],
) -> None:
    lost = await _queue(store, "lost")
    abandoned = await _queue(store, "abandoned")
    exhausted = await _queue(store, "exhausted")
    fresh_claim = await _queue(store, "busy")
    recorded.clear()
    lease = settings.email_lease_secs
    horizon = timedelta(seconds=settings.email_retry_horizon_secs)
    async with store.connection() as conn:
        await conn.execute(emails.update().where(emails.c.id == abandoned)
                           .values(status="sending", attempts=1))  # fmt: skip
        await conn.execute(
            emails.update()
            .where(emails.c.id == exhausted)  # its retry horizon is spent
            .values(status="sending", attempts=7, created_at=clock.now - horizon)
        )
    clock.advance(seconds=max(lease, settings.stale_queued_secs) + 1)
    async with store.connection() as conn:
        await conn.execute(emails.update().where(emails.c.id == fresh_claim)
                           .values(status="sending", attempts=1, updated_at=clock.now))  # fmt: skip
    result = await email_sweep.run(store, task_settings)
    assert sorted(result["requeued"]) == sorted([lost, abandoned])
    assert result["failed"] == 1
    async with store.connection() as conn:
        status = await conn.fetch_val(sa.select(emails.c.status).where(emails.c.id == exhausted))
    assert status == "failed"
    assert sorted(c[0] for c in recorded) == sorted([lost, abandoned])


async def test_sweep_delivers_through_the_worker(
    store: Store,
    settings: Settings,
    task_settings: TaskSettings,
    clock: FakeClock,
    mailbox: Mailbox,
    worker: Any,
) -> None:
    with store.sink.plugged(enqueue=None):  # the enqueue is lost (Redis was down)
        email_id = await _queue(store, "Recovered")
    clock.advance(seconds=settings.stale_queued_secs + 1)
    assert (await email_sweep.run(store, task_settings))["requeued"] == [email_id]

    async def delivered() -> bool:
        return len(mailbox.with_subject("Recovered")) == 1

    await wait_until(delivered)
