"""notify(): row + owner-only event + email unless opted out; the REST resource (own only)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from db.store import Store
from db.tables import emails, events, profiles
from domain.notifications import notify
from tasks.runtime import TaskRuntime
from tests.tasks.conftest import Mailbox, wait_until


async def _notify(store: Store, user_id: int, **fields: Any) -> dict[str, Any]:
    values = {"kind": "test", "title": "Hi", "body": "Body", "link": "/api/shifts/1/", **fields}
    async with store.unit_of_work(actor_id=None) as uow:
        return await notify(uow, user_id=user_id, **values)


async def test_notify_writes_row_event_and_email(
    make_user: Any, store: Store, mailbox: Mailbox, worker: TaskRuntime
) -> None:
    user = await make_user("operator", email="op@example.com")
    created = await _notify(store, user["user"], title="Shift changed")
    assert created["read"] is False and created["link"] == "/api/shifts/1/"
    async with store.connection() as conn:
        event = await conn.fetch_one(
            sa.select(events).where(events.c.topic == "notifications").order_by(events.c.id.desc())
        )
    assert event["owner_id"] == user["user"] and event["object_id"] == created["id"]

    async def mailed() -> bool:
        return len(mailbox.with_subject("Shift changed")) == 1

    await wait_until(mailed)
    [message] = mailbox.with_subject("Shift changed")
    assert message["To"] == "op@example.com"
    assert "/api/shifts/1/" in message.get_payload()


async def test_no_email_when_opted_out_or_no_address(make_user: Any, store: Store) -> None:
    opted_out = await make_user("operator")
    async with store.connection() as conn:
        await conn.execute(
            profiles.update()
            .where(profiles.c.user_id == opted_out["user"])
            .values(email_notifications=False)
        )
    no_address = await make_user("operator", email="")
    await _notify(store, opted_out["user"])
    await _notify(store, no_address["user"])
    async with store.connection() as conn:
        assert await conn.fetch_val(sa.select(sa.func.count()).select_from(emails)) == 0


async def test_rest_own_only_patch_and_mark_all_read(login: Any, store: Store) -> None:
    alice = await login("admin")
    bob = await login("operator")
    mine = [await _notify(store, alice.user["user"], title=f"A{i}") for i in range(3)]
    theirs = await _notify(store, bob.user["user"], title="B")

    page = (await alice.get("/api/notifications/")).json()
    assert page["count"] == 3
    assert [n["title"] for n in page["results"]] == ["A2", "A1", "A0"]
    assert (await alice.get(f"/api/notifications/{theirs['id']}/")).status_code == 404
    assert (
        await alice.patch(f"/api/notifications/{theirs['id']}/", json={"read": True})
    ).status_code == 404

    response = await alice.patch(f"/api/notifications/{mine[0]['id']}/", json={"read": True})
    assert response.status_code == 200 and response.json()["read"] is True
    assert response.headers["ETag"]
    assert (await alice.get("/api/notifications/?read=false")).json()["count"] == 2
    bad = await alice.patch(f"/api/notifications/{mine[0]['id']}/", json={"read": "maybe"})
    assert bad.status_code == 400 and "read" in bad.json()
    assert (await alice.delete(f"/api/notifications/{mine[0]['id']}/")).status_code == 405

    response = await alice.post("/api/notifications/mark-all-read/")
    assert response.status_code == 204
    assert (await alice.get("/api/notifications/?read=false")).json()["count"] == 0
    assert (await bob.get("/api/notifications/?read=false")).json()["count"] == 1
    assert (await alice.post("/api/notifications/", json={})).status_code == 405
