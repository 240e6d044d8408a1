"""Scheduled events: attendees, times, permissions, filters and recurring series."""

from __future__ import annotations

import orjson
import sqlalchemy as sa

from db.tables import events, series
from tests.builders.facilities import make_facility, make_location
from tests.builders.scheduled_events import event_body, make_scheduled_event


async def test_manager_creates_event_with_attendees(login, store) -> None:
    manager = await login("manager")
    alice = (await login("operator")).user["user"]
    bob = (await login("operator")).user["user"]
    facility = await make_facility(manager)
    response = await manager.post(
        "/api/scheduled-events/",
        json=event_body(facility=facility["id"], attendees=[bob, alice, bob], created_by=alice),
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created == {
        "id": created["id"],
        "title": "Election night",
        "description": "",
        "kind": "broadcast",
        "facility": facility["id"],
        "start": "2026-12-01T18:00:00Z",
        "end": "2026-12-02T02:00:00Z",
        "all_day": False,
        "attendees": sorted([alice, bob]),
        "created_by": manager.user["user"],
        "series": None,
        "created_at": created["created_at"],
        "updated_at": created["updated_at"],
    }
    detail = await manager.get(f"/api/scheduled-events/{created['id']}/")
    assert detail.json() == created
    listed = (await manager.get("/api/scheduled-events/")).json()
    assert listed["results"] == [created]
    async with store.connection() as conn:
        row = await conn.fetch_one(
            sa.select(events.c.data).where(events.c.topic == "scheduled-events")
        )
    assert orjson.loads(row["data"]) == created


async def test_input_rules(login) -> None:
    manager = await login("manager")
    response = await manager.post("/api/scheduled-events/", json=event_body(attendees=[999999]))
    assert response.status_code == 400
    assert response.json() == {"attendees": ['Invalid pk "999999" - object does not exist.']}
    response = await manager.post("/api/scheduled-events/", json=event_body(attendees=["x"]))
    assert response.status_code == 400 and list(response.json()) == ["attendees"]
    response = await manager.post("/api/scheduled-events/", json=event_body(facility=999999))
    assert response.status_code == 400 and list(response.json()) == ["facility"]
    response = await manager.post(
        "/api/scheduled-events/", json=event_body(end="2026-12-01T18:00:00Z")
    )
    assert response.status_code == 400 and list(response.json()) == ["end"]
    response = await manager.post("/api/scheduled-events/", json=event_body(kind="party"))
    assert response.status_code == 400 and list(response.json()) == ["kind"]
    response = await manager.post("/api/scheduled-events/", json={"title": ""})
    assert set(response.json()) == {"title", "kind", "start", "end"}


async def test_update_replaces_attendees_and_permissions(login) -> None:
    manager = await login("manager")
    operator = await login("operator")
    viewer = await login("viewer")
    admin = await login("admin")
    alice = operator.user["user"]
    bob = (await login("operator")).user["user"]
    created = await make_scheduled_event(manager, attendees=[alice])
    url = f"/api/scheduled-events/{created['id']}/"
    assert (await operator.post("/api/scheduled-events/", json=event_body())).status_code == 403
    assert (await operator.patch(url, json={"title": "x"})).status_code == 403
    assert (await viewer.get(url)).status_code == 200
    patched = await manager.patch(url, json={"attendees": [bob], "all_day": True})
    assert patched.status_code == 200
    assert patched.json()["attendees"] == [bob] and patched.json()["all_day"] is True
    cleared = await manager.patch(url, json={"attendees": []})
    assert cleared.json()["attendees"] == []
    assert (await manager.delete(url)).status_code == 403
    assert (await admin.delete(url)).status_code == 204
    assert (await viewer.get(url)).status_code == 404


async def test_filters(login) -> None:
    manager = await login("manager")
    alice = (await login("operator")).user["user"]
    bob = (await login("operator")).user["user"]
    facility = await make_facility(manager)
    late = await make_scheduled_event(
        manager,
        title="Transmitter swap",
        kind="maintenance",
        start="2026-12-05T01:00:00Z",
        end="2026-12-05T03:00:00Z",
        attendees=[alice, bob],
    )
    early = await make_scheduled_event(manager, facility=facility["id"], attendees=[alice])
    other = await make_scheduled_event(
        manager,
        title="Training",
        kind="training",
        start="2026-12-03T09:00:00Z",
        end="2026-12-03T10:00:00Z",
        description="New playout system",
    )

    async def ids(query: str) -> list[int]:
        response = await manager.get(f"/api/scheduled-events/{query}")
        assert response.status_code == 200, response.text
        return [e["id"] for e in response.json()["results"]]

    assert await ids("") == [early["id"], other["id"], late["id"]]
    assert await ids(f"?attendee={alice}") == [early["id"], late["id"]]
    assert await ids(f"?attendee={bob}") == [late["id"]]
    assert await ids(f"?attendee={bob},{alice}") == [early["id"], late["id"]]
    assert (await manager.get(f"/api/scheduled-events/?attendee={alice}")).json()["count"] == 2
    assert await ids(f"?facility={facility['id']}") == [early["id"]]
    assert await ids("?kind=maintenance,training") == [other["id"], late["id"]]
    assert await ids("?start_after=2026-12-03T00:00:00Z") == [other["id"], late["id"]]
    assert await ids("?start_before=2026-12-03T09:00:00Z") == [early["id"], other["id"]]
    assert await ids("?search=PLAYOUT") == [other["id"]]
    assert await ids("?ordering=-start") == [late["id"], other["id"], early["id"]]
    bad = await manager.get("/api/scheduled-events/?attendee=x&kind=party")
    assert bad.status_code == 400 and set(bad.json()) == {"attendee", "kind"}


async def test_recurring_event_creates_series(login, store) -> None:
    manager = await login("manager")
    alice = (await login("operator")).user["user"]
    location = await make_location(manager, timezone="Europe/Paris")
    facility = await make_facility(manager, location=location["id"])
    created = await make_scheduled_event(
        manager, facility=facility["id"], attendees=[alice], recurrence="FREQ=DAILY;COUNT=5"
    )
    assert created["series"] is not None
    async with store.connection() as conn:
        row = await conn.fetch_one(sa.select(series).where(series.c.id == created["series"]))
    assert row["kind"] == "scheduled_event"
    assert row["rrule"] == "FREQ=DAILY;COUNT=5"
    assert row["timezone"] == "Europe/Paris"
    assert row["duration_secs"] == 8 * 3600
    assert row["template"]["attendees"] == [alice]
    assert row["template"]["facility_id"] == facility["id"]
    bad = await manager.post("/api/scheduled-events/", json=event_body(recurrence="FREQ=MINUTELY"))
    assert bad.status_code == 400 and list(bad.json()) == ["recurrence"]
