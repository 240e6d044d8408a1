"""Time-off requests: private rows, review workflow, notifications, conflicting shifts."""

from __future__ import annotations

import orjson
import sqlalchemy as sa

from db.tables import events, time_off_requests
from tests.builders.facilities import make_facility, make_location
from tests.builders.shifts import make_shift
from tests.builders.time_off import make_time_off


async def test_operator_requests_time_off(login, store) -> None:
    operator = await login("operator")
    response = await operator.post(
        "/api/time-off-requests/",
        json={
            "kind": "sick",
            "start_date": "2026-12-01",
            "end_date": "2026-12-01",
            "reason": "flu",
            "user": 1,
            "review_note": "self-approved",
            "reviewed_by": 1,
        },
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created == {
        "id": created["id"],
        "user": operator.user["user"],
        "kind": "sick",
        "start_date": "2026-12-01",
        "end_date": "2026-12-01",
        "reason": "flu",
        "status": "pending",
        "reviewed_by": None,
        "reviewed_at": None,
        "review_note": "",
        "conflicting_shifts": [],
        "created_at": created["created_at"],
        "updated_at": created["updated_at"],
    }
    async with store.connection() as conn:
        row = await conn.fetch_one(sa.select(events).where(events.c.topic == "time-off-requests"))
    assert bool(row["private"]) and row["owner_id"] == operator.user["user"]


async def test_input_rules(login) -> None:
    operator = await login("operator")
    viewer = await login("viewer")
    base = {"kind": "vacation", "start_date": "2026-12-03", "end_date": "2026-12-01"}
    response = await operator.post("/api/time-off-requests/", json=base)
    assert response.status_code == 400 and list(response.json()) == ["end_date"]
    good = {**base, "end_date": "2026-12-04"}
    response = await operator.post("/api/time-off-requests/", json={**good, "status": "approved"})
    assert response.status_code == 400 and list(response.json()) == ["status"]
    response = await operator.post("/api/time-off-requests/", json={**good, "kind": "holiday"})
    assert response.status_code == 400 and list(response.json()) == ["kind"]
    response = await operator.post("/api/time-off-requests/", json={"kind": "other"})
    assert set(response.json()) == {"start_date", "end_date"}
    assert (await viewer.post("/api/time-off-requests/", json=good)).status_code == 403


async def test_private_rows_never_leak(login) -> None:
    alice = await login("operator")
    bob = await login("operator")
    manager = await login("manager")
    viewer = await login("viewer")
    mine = await make_time_off(alice)
    theirs = await make_time_off(bob, reason="bob's")
    url = f"/api/time-off-requests/{theirs['id']}/"
    listed = (await alice.get("/api/time-off-requests/")).json()
    assert listed["count"] == 1 and listed["results"][0]["id"] == mine["id"]
    query = f"/api/time-off-requests/?user={bob.user['user']}"
    assert (await alice.get(query)).json()["count"] == 0
    assert (await alice.get(url)).status_code == 404
    assert (await alice.patch(url, json={"status": "cancelled"})).status_code == 404
    assert (await alice.delete(url)).status_code == 404
    assert (await viewer.get("/api/time-off-requests/")).json()["count"] == 0
    assert (await viewer.get(url)).status_code == 404
    assert (await manager.get("/api/time-off-requests/")).json()["count"] == 2
    assert (await manager.get(url)).json()["reason"] == "bob's"


async def test_review_workflow_notifies_requester(login) -> None:
    operator = await login("operator")
    manager = await login("manager")
    request = await make_time_off(operator)
    url = f"/api/time-off-requests/{request['id']}/"
    assert (await operator.patch(url, json={"status": "approved"})).status_code == 403
    assert (await operator.patch(url, json={"status": "denied"})).status_code == 403
    ignored = await operator.patch(url, json={"review_note": "fine by me"})
    assert ignored.status_code == 200 and ignored.json()["review_note"] == ""
    assert (await manager.patch(url, json={"status": "cancelled"})).status_code == 403
    assert (await manager.patch(url, json={"reason": "mine now"})).status_code == 403

    approved = await manager.patch(url, json={"status": "approved", "review_note": "Enjoy"})
    assert approved.status_code == 200
    body = approved.json()
    assert body["status"] == "approved" and body["review_note"] == "Enjoy"
    assert body["reviewed_by"] == manager.user["user"] and body["reviewed_at"]
    notes = (await operator.get("/api/notifications/")).json()
    assert notes["count"] == 1
    assert notes["results"][0]["kind"] == "time_off_reviewed"
    assert notes["results"][0]["link"] == url

    for move in ("denied", "pending"):
        response = await manager.patch(url, json={"status": move})
        assert response.status_code == 400 and list(response.json()) == ["status"]
    late_cancel = await operator.patch(url, json={"status": "cancelled"})
    assert late_cancel.status_code == 400 and list(late_cancel.json()) == ["status"]
    late_edit = await operator.patch(url, json={"end_date": "2026-12-10"})
    assert late_edit.status_code == 400
    assert (await operator.get(url)).json() == body


async def test_requester_edits_and_cancels_while_pending(login) -> None:
    operator = await login("operator")
    manager = await login("manager")
    request = await make_time_off(operator)
    url = f"/api/time-off-requests/{request['id']}/"
    edited = await operator.patch(url, json={"end_date": "2026-12-05", "reason": "trip"})
    assert edited.status_code == 200 and edited.json()["end_date"] == "2026-12-05"
    cancelled = await operator.patch(url, json={"status": "cancelled"})
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = await operator.patch(url, json={"status": "pending"})
    assert again.status_code == 400
    deny = await manager.patch(url, json={"status": "denied"})
    assert deny.status_code == 400
    assert (await operator.get("/api/notifications/")).json()["count"] == 0


async def test_conflicting_shifts_use_the_facility_day(login) -> None:
    manager = await login("manager")
    operator = await login("operator")
    other = await login("operator")
    user_id = operator.user["user"]
    london = await make_facility(manager)
    tokyo_site = await make_location(manager, timezone="Asia/Tokyo")
    tokyo = await make_facility(manager, location=tokyo_site["id"])
    on_the_day = await make_shift(manager, user=user_id, facility=london["id"])
    # 20:00-23:00 UTC on 1 Dec is 05:00-08:00 on 2 Dec in Tokyo.
    tokyo_morning = await make_shift(
        manager,
        user=user_id,
        facility=tokyo["id"],
        start="2026-12-01T20:00:00Z",
        end="2026-12-01T23:00:00Z",
    )
    cancelled = await make_shift(
        manager,
        user=user_id,
        facility=london["id"],
        start="2026-11-30T08:00:00Z",
        end="2026-11-30T12:00:00Z",
    )
    await manager.patch(f"/api/shifts/{cancelled['id']}/", json={"status": "cancelled"})
    await make_shift(manager, user=other.user["user"], facility=london["id"])
    await make_shift(
        manager,
        user=user_id,
        facility=london["id"],
        start="2026-12-05T08:00:00Z",
        end="2026-12-05T16:00:00Z",
    )

    first_day = await make_time_off(operator, start_date="2026-12-01", end_date="2026-12-01")
    assert first_day["conflicting_shifts"] == [on_the_day["id"]]
    second_day = await make_time_off(operator, start_date="2026-12-02", end_date="2026-12-02")
    assert second_day["conflicting_shifts"] == [tokyo_morning["id"]]
    span = await make_time_off(operator, start_date="2026-11-30", end_date="2026-12-03")
    assert span["conflicting_shifts"] == sorted([on_the_day["id"], tokyo_morning["id"]])
    listed = (await manager.get(f"/api/time-off-requests/?user={user_id}")).json()
    by_id = {r["id"]: r["conflicting_shifts"] for r in listed["results"]}
    assert by_id[first_day["id"]] == [on_the_day["id"]]
    assert by_id[span["id"]] == sorted([on_the_day["id"], tokyo_morning["id"]])


async def test_filters_ordering_and_delete(login) -> None:
    alice = await login("operator")
    bob = await login("operator")
    manager = await login("manager")
    admin = await login("admin")
    first = await make_time_off(alice, kind="sick", start_date="2026-11-01", end_date="2026-11-02")
    second = await make_time_off(bob, start_date="2026-12-10", end_date="2026-12-12")
    third = await make_time_off(
        alice, kind="personal", start_date="2026-12-20", end_date="2026-12-20"
    )
    await manager.patch(f"/api/time-off-requests/{second['id']}/", json={"status": "denied"})

    async def ids(query: str) -> list[int]:
        response = await manager.get(f"/api/time-off-requests/{query}")
        assert response.status_code == 200, response.text
        return [r["id"] for r in response.json()["results"]]

    assert await ids("") == [third["id"], second["id"], first["id"]]
    assert await ids(f"?user={alice.user['user']}") == [third["id"], first["id"]]
    assert await ids("?status=denied") == [second["id"]]
    assert await ids("?kind=sick,personal") == [third["id"], first["id"]]
    assert await ids("?start_after=2026-12-01") == [third["id"], second["id"]]
    assert await ids("?start_before=2026-12-10") == [second["id"], first["id"]]
    assert await ids("?ordering=start_date") == [first["id"], second["id"], third["id"]]
    bad = await manager.get("/api/time-off-requests/?kind=holiday&start_after=x&status=y")
    assert bad.status_code == 400 and set(bad.json()) == {"kind", "start_after", "status"}

    url = f"/api/time-off-requests/{first['id']}/"
    assert (await alice.delete(url)).status_code == 403
    assert (await manager.delete(url)).status_code == 403
    assert (await admin.delete(url)).status_code == 204
    assert (await manager.get(url)).status_code == 404


async def test_shift_writes_emit_time_off_updates_when_conflicts_change(login, store) -> None:
    """Live clients learn that a request's conflicting shifts changed (create, move, delete)."""
    manager = await login("manager")
    operator = await login("operator")
    user_id = operator.user["user"]
    london = await make_facility(manager)
    request = await make_time_off(operator, start_date="2026-12-01", end_date="2026-12-01")
    unrelated = await make_time_off(operator, start_date="2026-12-20", end_date="2026-12-20")

    async def updates() -> list[list[int]]:
        async with store.connection() as conn:
            rows = await conn.fetch_all(
                sa.select(events.c.object_id, events.c.data)
                .where(events.c.topic == "time-off-requests", events.c.action == "updated")
                .order_by(events.c.id)
            )
        assert all(row["object_id"] == request["id"] for row in rows), "only the one affected"
        return [orjson.loads(row["data"])["conflicting_shifts"] for row in rows]

    shift = await make_shift(manager, user=user_id, facility=london["id"])
    assert await updates() == [[shift["id"]]]
    moved = await manager.patch(
        f"/api/shifts/{shift['id']}/",
        json={"start": "2026-12-02T08:00:00Z", "end": "2026-12-02T16:00:00Z"},
    )
    assert moved.status_code == 200, moved.text
    assert await updates() == [[shift["id"]], []]
    await manager.patch(f"/api/shifts/{shift['id']}/", json={"position": "Other"})
    assert await updates() == [[shift["id"]], []]  # no change in conflicts, no event
    shown = (await operator.get(f"/api/time-off-requests/{unrelated['id']}/")).json()
    assert shown["conflicting_shifts"] == []


async def test_a_new_time_zone_for_a_shifts_place_is_told_to_the_requests_it_changes(
    login, store
) -> None:
    """A request's days are local to each shift's facility: a location's new time zone, or a
    facility moved to another location, changes its conflicts, and live clients learn it."""
    manager = await login("manager")
    operator = await login("operator")
    london = await make_location(manager, timezone="Europe/London")
    tokyo = await make_location(manager, timezone="Asia/Tokyo")
    studio = await make_facility(manager, location=london["id"])
    # 23:30-00:30 UTC: 1-2 December in London, 2 December 08:30-09:30 in Tokyo.
    shift = await make_shift(
        manager,
        user=operator.user["user"],
        facility=studio["id"],
        start="2026-12-01T23:30:00Z",
        end="2026-12-02T00:30:00Z",
    )
    request = await make_time_off(operator, start_date="2026-12-01", end_date="2026-12-01")
    assert request["conflicting_shifts"] == [shift["id"]]

    async def told() -> list[list[int]]:
        async with store.connection() as conn:
            rows = await conn.fetch_all(
                sa.select(events.c.data)
                .where(
                    events.c.topic == "time-off-requests",
                    events.c.action == "updated",
                    events.c.object_id == request["id"],
                )
                .order_by(events.c.id)
            )
        return [orjson.loads(row["data"])["conflicting_shifts"] for row in rows]

    async def shown() -> list[int]:
        got = await operator.get(f"/api/time-off-requests/{request['id']}/")
        return got.json()["conflicting_shifts"]

    moved = await manager.patch(f"/api/facilities/{studio['id']}/", json={"location": tokyo["id"]})
    assert moved.status_code == 200, moved.text
    assert await told() == [[]] and await shown() == []
    renamed = await manager.patch(f"/api/locations/{tokyo['id']}/", json={"name": "Tokyo"})
    assert renamed.status_code == 200, renamed.text
    assert await told() == [[]]  # no change in conflicts, no event
    rezoned = await manager.patch(
        f"/api/locations/{tokyo['id']}/", json={"timezone": "Europe/London"}
    )
    assert rezoned.status_code == 200, rezoned.text
    assert await told() == [[], [shift["id"]]] and await shown() == [shift["id"]]


async def test_a_managers_totals_follow_every_change(login, store) -> None:
    """A manager's list counts once per newest time-off event (the resource's `changes_on`)."""
    alice = await login("operator")
    manager = await login("manager")
    admin = await login("admin")
    made = [
        await make_time_off(alice, start_date=f"2026-12-0{day}", end_date=f"2026-12-0{day}")
        for day in (1, 2, 3)
    ]

    async def count(query: str = "") -> int:
        response = await manager.get(f"/api/time-off-requests/?page_size=1{query}")
        assert response.status_code == 200, response.text
        return response.json()["count"]

    assert await count() == 3 and await count("&status=pending") == 3
    # A row removed behind the unit of work's back (no event) is still counted: the total
    # was counted once and is reused while no time-off event is newer.
    async with store.connection() as conn:
        await conn.execute(
            sa.delete(time_off_requests).where(time_off_requests.c.id == made[0]["id"])
        )
    assert await count() == 3
    # Every change through the unit of work counts again.
    await manager.patch(f"/api/time-off-requests/{made[1]['id']}/", json={"status": "denied"})
    assert await count("&status=pending") == 1 and await count("&status=denied") == 1
    await make_time_off(alice, start_date="2026-12-09", end_date="2026-12-09")
    assert await count() == 3
    assert (await admin.delete(f"/api/time-off-requests/{made[2]['id']}/")).status_code == 204
    assert await count() == 2 and await count("&status=pending") == 1
