"""Escalation, shift reminders and retention, timed by an injectable clock (no sleeping)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from bms.settings import Settings
from db.store import Store
from db.tables import auth_tokens, events, incident_tickets, login_failures, notifications, sessions
from tasks.config import TaskSettings
from tasks.jobs import escalation, reminders, retention
from tests.tasks.builders import make_facility, make_incident, make_shift
from tests.tasks.conftest import FakeClock


async def _notified(store: Store, kind: str) -> list[int]:
    async with store.connection() as conn:
        rows = await conn.fetch_all(
            sa.select(notifications.c.user_id).where(notifications.c.kind == kind)
        )
    return sorted(row[0] for row in rows)


async def test_escalation_after_n_minutes_to_managers_and_on_shift(
    make_user: Any, store: Store, settings: Settings, task_settings: TaskSettings, clock: FakeClock
) -> None:
    reporter, on_shift, elsewhere = [u async for u in _users(make_user, 3)]
    manager = await make_user("manager")
    facility, other = await make_facility(store), await make_facility(store)
    now = clock.now
    await make_shift(store, user_id=on_shift["user"], facility_id=facility,
                     start=now - timedelta(hours=1))  # fmt: skip
    await make_shift(store, user_id=elsewhere["user"], facility_id=other,
                     start=now - timedelta(hours=1))  # fmt: skip
    critical = await make_incident(store, reporter=reporter["user"], created_at=now,
                                   facility_id=facility)  # fmt: skip
    on_air = await make_incident(store, reporter=reporter["user"], created_at=now,
                                 priority="low", on_air_impact=True)  # fmt: skip
    await make_incident(store, reporter=reporter["user"], created_at=now, priority="high")
    await make_incident(store, reporter=reporter["user"], created_at=now, status="acknowledged")

    clock.advance(seconds=settings.escalation_after_secs - 1)
    assert (await escalation.run(store, task_settings))["escalated"] == []
    clock.advance(seconds=1)
    assert (await escalation.run(store, task_settings))["escalated"] == [critical, on_air]
    assert (await escalation.run(store, task_settings))["escalated"] == []  # once only
    async with store.connection() as conn:
        links = await conn.fetch_all(
            sa.select(notifications.c.user_id, notifications.c.link)
            .where(notifications.c.kind == "incident_escalated")
        )  # fmt: skip
    by_ticket: dict[str, set[int]] = {}
    for row in links:
        by_ticket.setdefault(row[1], set()).add(row[0])
    assert by_ticket[f"/api/incident-tickets/{critical}/"] == {manager["user"], on_shift["user"]}
    assert by_ticket[f"/api/incident-tickets/{on_air}/"] == {manager["user"]}
    async with store.connection() as conn:
        stamped = await conn.fetch_val(
            sa.select(incident_tickets.c.escalated_at).where(incident_tickets.c.id == critical)
        )
    assert stamped == clock.now


async def _users(make_user: Any, n: int) -> Any:
    for _ in range(n):
        yield await make_user("operator")


async def test_shift_reminder_one_hour_before_once(
    make_user: Any, store: Store, settings: Settings, task_settings: TaskSettings, clock: FakeClock
) -> None:
    user = await make_user("operator")
    facility = await make_facility(store)
    start = clock.now + timedelta(hours=3)
    shift_id = await make_shift(store, user_id=user["user"], facility_id=facility, start=start)
    await make_shift(store, user_id=user["user"], facility_id=facility,
                     start=start + timedelta(hours=10), status="cancelled")  # fmt: skip
    clock.now = start - timedelta(seconds=settings.shift_reminder_lead_secs + 1)
    assert (await reminders.run(store, task_settings))["reminded"] == []
    clock.advance(seconds=1)
    assert (await reminders.run(store, task_settings))["reminded"] == [shift_id]
    clock.advance(minutes=30)
    assert (await reminders.run(store, task_settings))["reminded"] == []
    assert await _notified(store, "shift_reminder") == [user["user"]]
    clock.now = start + timedelta(hours=10) - timedelta(minutes=5)
    assert (await reminders.run(store, task_settings))["reminded"] == []  # cancelled: no reminder


async def test_retention_deletes_only_old_rows(
    make_user: Any, store: Store, settings: Settings, task_settings: TaskSettings, clock: FakeClock
) -> None:
    user = await make_user("operator")
    now = clock.now
    old = now - timedelta(days=settings.event_retention_days + 1)
    async with store.connection() as conn:
        for at in (old, old, now):
            await conn.execute(
                events.insert().values(
                    topic="shifts", action="created", object_id=1, data="{}", created_at=at
                )
            )
        for key, expires in (
            ("a" * 64, now - timedelta(days=30)),
            ("b" * 64, now + timedelta(days=1)),
        ):
            await conn.execute(
                sessions.insert().values(
                    key_hash=key, user_id=user["user"], expires_at=expires, created_at=old
                )
            )
        for jti, expires, revoked in (("j1", now - timedelta(hours=1), None),
                                      ("j2", now + timedelta(hours=1), now),
                                      ("j3", now + timedelta(hours=1), None)):  # fmt: skip
            await conn.execute(auth_tokens.insert().values(
                jti=jti, family=jti, user_id=user["user"], kind="refresh", expires_at=expires,
                revoked_at=revoked, created_at=old))  # fmt: skip
        for at in (old, now):
            await conn.execute(login_failures.insert().values(
                username="x", client_ip="1.2.3.4", at=at))  # fmt: skip
    counts = await retention.run(store, task_settings)
    assert counts == {"events": 2, "sessions": 1, "auth_tokens": 1, "login_failures": 1}
    async with store.connection() as conn:
        jtis = {r[0] for r in await conn.fetch_all(sa.select(auth_tokens.c.jti))}
    assert jtis == {"j2", "j3"}  # revoked but unexpired stays: it must keep failing
