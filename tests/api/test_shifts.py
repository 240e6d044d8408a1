"""Shifts: rules (times, overlap, moves), permissions, filters, notifications, events, CSV."""

from __future__ import annotations

import asyncio

import orjson
import sqlalchemy as sa

from db.tables import events, history
from tests.builders.facilities import make_facility
from tests.builders.shifts import at, make_shift, shift_body


async def test_manager_creates_shift_and_user_is_notified(login, store) -> None:
    manager = await login("manager")
    operator = await login("operator")
    user_id = operator.user["user"]
    body = await shift_body(manager, user=user_id, notes="bring headset", unknown=1)
    response = await manager.post("/api/shifts/", json=body)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created == {
        "id": created["id"],
        "user": user_id,
        "facility": body["facility"],
        "position": "MCR operator",
        "start": "2026-12-01T08:00:00Z",
        "end": "2026-12-01T16:00:00Z",
        "status": "scheduled",
        "notes": "bring headset",
        "series": None,
        "created_at": created["created_at"],
        "updated_at": created["updated_at"],
    }
    detail = await operator.get(f"/api/shifts/{created['id']}/")
    assert detail.status_code == 200 and detail.json() == created
    assert detail.headers["ETag"]
    notes = (await operator.get("/api/notifications/")).json()
    assert notes["count"] == 1
    assert notes["results"][0]["link"] == f"/api/shifts/{created['id']}/"
    async with store.connection() as conn:
        row = await conn.fetch_one(
            sa.select(events.c.data).where(events.c.topic == "shifts", events.c.action == "created")
        )
    assert orjson.loads(row["data"]) == created


async def test_offsets_are_returned_in_utc(login) -> None:
    manager = await login("manager")
    user_id = (await login("operator")).user["user"]
    body = await shift_body(
        manager, user=user_id, start="2026-12-01T10:00:00+02:00", end="2026-12-01T18:00:00+02:00"
    )
    created = (await manager.post("/api/shifts/", json=body)).json()
    assert created["start"] == "2026-12-01T08:00:00Z"
    assert created["end"] == "2026-12-01T16:00:00Z"


async def test_time_rules_are_400_on_end_and_naive_is_400(login) -> None:
    manager = await login("manager")
    user_id = (await login("operator")).user["user"]
    body = await shift_body(manager, user=user_id)
    for end in (at(0), at(-1), at(24.5)):
        response = await manager.post("/api/shifts/", json={**body, "end": end})
        assert response.status_code == 400, end
        assert list(response.json()) == ["end"]
    exactly_a_day = await manager.post("/api/shifts/", json={**body, "end": at(24)})
    assert exactly_a_day.status_code == 201
    naive = await manager.post("/api/shifts/", json={**body, "start": "2026-12-05T08:00:00"})
    assert naive.status_code == 400 and "start" in naive.json()
    missing = await manager.post("/api/shifts/", json={"position": "x"})
    assert missing.status_code == 400
    assert set(missing.json()) == {"user", "facility", "start", "end"}


async def test_unknown_user_or_facility_is_400_invalid_pk(login) -> None:
    manager = await login("manager")
    user_id = (await login("operator")).user["user"]
    body = await shift_body(manager, user=user_id)
    response = await manager.post("/api/shifts/", json={**body, "user": 999999})
    assert response.status_code == 400
    assert response.json() == {"user": ['Invalid pk "999999" - object does not exist.']}
    response = await manager.post("/api/shifts/", json={**body, "facility": 999999})
    assert response.json() == {"facility": ['Invalid pk "999999" - object does not exist.']}


async def test_overlap_with_live_shift_of_same_user_is_409(login) -> None:
    manager = await login("manager")
    user_id = (await login("operator")).user["user"]
    other_user = (await login("operator")).user["user"]
    first = await make_shift(manager, user=user_id)
    facility = first["facility"]
    clash = await manager.post(
        "/api/shifts/", json=await shift_body(manager, user=user_id, start=at(7), end=at(9))
    )
    assert clash.status_code == 409
    assert str(first["id"]) in clash.json()["detail"]
    # Touching ends do not overlap; another user may work the same hours.
    await make_shift(manager, user=user_id, facility=facility, start=at(8), end=at(12))
    await make_shift(manager, user=other_user, facility=facility)
    # A cancelled shift frees its time.
    cancel = await manager.patch(f"/api/shifts/{first['id']}/", json={"status": "cancelled"})
    assert cancel.status_code == 200
    await make_shift(manager, user=user_id, facility=facility, start=at(1), end=at(2))
    # Reinstating the cancelled one now clashes.
    reinstate = await manager.patch(f"/api/shifts/{first['id']}/", json={"status": "scheduled"})
    assert reinstate.status_code == 409


async def test_update_into_overlap_is_409_and_changes_nothing(login) -> None:
    manager = await login("manager")
    user_id = (await login("operator")).user["user"]
    first = await make_shift(manager, user=user_id)
    second = await make_shift(manager, user=user_id, start=at(24), end=at(32))
    url = f"/api/shifts/{second['id']}/"
    response = await manager.patch(url, json={"start": at(4), "end": at(10)})
    assert response.status_code == 409
    assert str(first["id"]) in response.json()["detail"]
    assert (await manager.get(url)).json() == second
    # Moving a shift within its own time never clashes with itself.
    moved = await manager.patch(url, json={"start": at(25), "end": at(33)})
    assert moved.status_code == 200


async def test_concurrent_overlapping_creates_one_wins(login) -> None:
    manager = await login("manager")
    user_id = (await login("operator")).user["user"]
    facility = (await make_facility(manager))["id"]
    for round_ in range(3):
        bodies = [
            await shift_body(
                manager,
                user=user_id,
                facility=facility,
                start=at(100 * round_ + i),
                end=at(100 * round_ + i + 6),
            )
            for i in range(4)
        ]
        responses = await asyncio.gather(*(manager.post("/api/shifts/", json=b) for b in bodies))
        codes = sorted(r.status_code for r in responses)
        assert codes == [201, 409, 409, 409], [r.text for r in responses]
    listed = (await manager.get(f"/api/shifts/?user={user_id}")).json()
    assert listed["count"] == 3


async def test_status_moves_notify_and_record_history(login, store) -> None:
    manager = await login("manager")
    operator = await login("operator")
    shift = await make_shift(manager, user=operator.user["user"])
    url = f"/api/shifts/{shift['id']}/"
    assert (await manager.patch(url, json={"status": "confirmed"})).status_code == 200
    assert (await manager.patch(url, json={"status": "completed"})).status_code == 200
    back = await manager.patch(url, json={"status": "scheduled"})
    assert back.status_code == 400 and list(back.json()) == ["status"]
    bogus = await manager.patch(url, json={"status": "done"})
    assert bogus.status_code == 400 and list(bogus.json()) == ["status"]
    kinds = [n["kind"] for n in (await operator.get("/api/notifications/")).json()["results"]]
    assert sorted(kinds) == ["shift_assigned", "shift_changed", "shift_changed"]
    async with store.connection() as conn:
        rows = await conn.fetch_all(
            sa.select(history.c.changes)
            .where(history.c.subject == "shifts", history.c.subject_id == shift["id"])
            .order_by(history.c.id)
        )
    assert [r["changes"] for r in rows] == [
        {"status": ["scheduled", "confirmed"]},
        {"status": ["confirmed", "completed"]},
    ]


async def test_reassigning_notifies_both_users(login) -> None:
    manager = await login("manager")
    first = await login("operator")
    second = await login("operator")
    shift = await make_shift(manager, user=first.user["user"])
    response = await manager.patch(
        f"/api/shifts/{shift['id']}/", json={"user": second.user["user"]}
    )
    assert response.status_code == 200
    first_kinds = [n["kind"] for n in (await first.get("/api/notifications/")).json()["results"]]
    assert sorted(first_kinds) == ["shift_assigned", "shift_cancelled"]
    second_notes = (await second.get("/api/notifications/")).json()
    assert [n["kind"] for n in second_notes["results"]] == ["shift_assigned"]


async def test_permissions(login) -> None:
    manager = await login("manager")
    operator = await login("operator")
    viewer = await login("viewer")
    admin = await login("admin")
    body = await shift_body(manager, user=operator.user["user"])
    assert (await operator.post("/api/shifts/", json=body)).status_code == 403
    assert (await viewer.post("/api/shifts/", json=body)).status_code == 403
    shift = await make_shift(manager, user=operator.user["user"])
    url = f"/api/shifts/{shift['id']}/"
    assert (await operator.patch(url, json={"notes": "x"})).status_code == 403
    assert (await operator.put(url, json=body)).status_code == 403
    assert (await viewer.get(url)).status_code == 200
    assert (await viewer.get("/api/shifts/")).json()["count"] == 1
    assert (await manager.delete(url)).status_code == 403
    assert (await operator.delete(url)).status_code == 403
    assert (await admin.delete(url)).status_code == 204
    assert (await manager.get(url)).status_code == 404


async def test_put_needs_every_required_field_and_if_match(login) -> None:
    manager = await login("manager")
    user_id = (await login("operator")).user["user"]
    shift = await make_shift(manager, user=user_id)
    url = f"/api/shifts/{shift['id']}/"
    put = await manager.put(url, json={"notes": "only"})
    assert put.status_code == 400
    etag = (await manager.get(url)).headers["ETag"]
    full = {k: shift[k] for k in ("user", "facility", "start", "end")}
    ok = await manager.put(url, json={**full, "position": "Lead"}, headers={"If-Match": etag})
    assert ok.status_code == 200 and ok.json()["position"] == "Lead"
    stale = await manager.patch(url, json={"notes": "late"}, headers={"If-Match": etag})
    assert stale.status_code == 412


async def test_filters_search_and_ordering(login) -> None:
    manager = await login("manager")
    alice = (await login("operator")).user["user"]
    bob = (await login("operator")).user["user"]
    facility = (await make_facility(manager))["id"]
    late = await make_shift(manager, user=alice, facility=facility, start=at(48), end=at(56))
    early = await make_shift(manager, user=alice, facility=facility, notes="Night cover")
    other = await make_shift(manager, user=bob, start=at(24), end=at(30), position="Engineer")
    await manager.patch(f"/api/shifts/{other['id']}/", json={"status": "confirmed"})

    async def ids(query: str) -> list[int]:
        response = await manager.get(f"/api/shifts/{query}")
        assert response.status_code == 200, response.text
        return [s["id"] for s in response.json()["results"]]

    assert await ids("") == [early["id"], other["id"], late["id"]]
    assert await ids("?ordering=-start") == [late["id"], other["id"], early["id"]]
    assert await ids(f"?user={alice}") == [early["id"], late["id"]]
    assert await ids(f"?user={alice},{bob}&status=confirmed") == [other["id"]]
    assert await ids(f"?facility={facility}") == [early["id"], late["id"]]
    assert await ids("?search=night") == [early["id"]]
    assert await ids("?search=ENGINEER") == [other["id"]]
    assert await ids(f"?start_after={at(24)}".replace("+", "%2B")) == [other["id"], late["id"]]
    assert await ids("?start_before=2026-12-01T08:00:00Z") == [early["id"]]
    assert await ids("?end_after=2026-12-02T14:00:00Z") == [other["id"], late["id"]]
    assert await ids("?end_before=2026-12-02T14:00:00Z") == [early["id"], other["id"]]
    bad = await manager.get("/api/shifts/?status=done&start_after=yesterday&user=x")
    assert bad.status_code == 400
    assert set(bad.json()) == {"status", "start_after", "user"}


async def test_csv_export(login) -> None:
    manager = await login("manager")
    user_id = (await login("operator")).user["user"]
    shift = await make_shift(manager, user=user_id)
    response = await manager.get("/api/shifts/?format=csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    lines = response.text.strip().splitlines()
    assert lines[0].startswith("id,user,facility,position,start,end,status")
    assert lines[1].startswith(f"{shift['id']},{user_id},")
    assert len(lines) == 2
