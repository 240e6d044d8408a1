"""Facilities: CRUD, (location, name) uniqueness, filters, permissions, 409 on referenced rows."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from db.tables import events, history
from tests.builders.facilities import make_facility, make_location
from tests.builders.shifts import insert_shift


async def _reference_facility(store, facility_id: int, user_id: int) -> None:
    """Give the facility a shift, so it (and its location) is still referenced."""
    start = datetime(2026, 11, 26, 8, tzinfo=UTC)
    async with store.unit_of_work(actor_id=None) as uow:
        await insert_shift(uow.conn, user_id=user_id, facility_id=facility_id, start=start)


async def test_manager_creates_facility_with_defaults_and_event(login, store) -> None:
    manager = await login("manager")
    location = await make_location(manager)
    response = await manager.post(
        "/api/facilities/",
        json={"name": "MCR", "location": location["id"], "kind": "control_room", "x": 1},
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created == {
        "id": created["id"],
        "name": "MCR",
        "location": location["id"],
        "kind": "control_room",
        "status": "operational",
        "description": "",
        "created_at": created["created_at"],
        "updated_at": created["updated_at"],
    }
    assert created["created_at"].endswith("Z")
    detail = await manager.get(f"/api/facilities/{created['id']}/")
    assert detail.status_code == 200 and detail.json() == created
    assert detail.headers["ETag"] == response.headers["ETag"]
    async with store.connection() as conn:
        row = await conn.fetch_one(sa.select(events).where(events.c.topic == "facilities"))
    assert row["action"] == "created" and row["object_id"] == created["id"]


async def test_validation_errors(login) -> None:
    manager = await login("manager")
    location = await make_location(manager)
    response = await manager.post("/api/facilities/", json={"name": "A"})
    assert response.status_code == 400
    assert set(response.json()) == {"location", "kind"}
    response = await manager.post(
        "/api/facilities/",
        json={"name": "A", "location": location["id"], "kind": "bunker", "status": "on_fire"},
    )
    assert response.status_code == 400
    assert set(response.json()) == {"kind", "status"}
    response = await manager.post(
        "/api/facilities/", json={"name": "A", "location": 999999, "kind": "studio"}
    )
    assert response.status_code == 400
    assert response.json() == {"location": ['Invalid pk "999999" - object does not exist.']}


async def test_unique_location_and_name(login) -> None:
    manager = await login("manager")
    first = await make_location(manager)
    second = await make_location(manager)
    await make_facility(manager, name="Studio A", location=first["id"])
    clash = await manager.post(
        "/api/facilities/", json={"name": "Studio A", "location": first["id"], "kind": "studio"}
    )
    assert clash.status_code == 400
    assert list(clash.json()) == ["non_field_errors"]
    other = await make_facility(manager, name="Studio A", location=second["id"])
    moved = await manager.patch(f"/api/facilities/{other['id']}/", json={"location": first["id"]})
    assert moved.status_code == 400
    assert list(moved.json()) == ["non_field_errors"]


async def test_roles(login) -> None:
    manager = await login("manager")
    facility = await make_facility(manager)
    url = f"/api/facilities/{facility['id']}/"
    viewer = await login("viewer")
    assert (await viewer.get("/api/facilities/")).json()["count"] == 1
    assert (await viewer.get(url)).status_code == 200
    operator = await login("operator")
    body = {"name": "X", "location": facility["location"], "kind": "office"}
    assert (await operator.post("/api/facilities/", json=body)).status_code == 403
    assert (await operator.patch(url, json={"status": "offline"})).status_code == 403
    assert (await manager.delete(url)).status_code == 403
    admin = await login("admin")
    assert (await admin.delete(url)).status_code == 204
    assert (await viewer.get(url)).status_code == 404


async def test_unknown_id_is_404(login) -> None:
    admin = await login("admin")
    url = "/api/facilities/999999/"
    assert (await admin.get(url)).json() == {"detail": "Not found."}
    assert (await admin.patch(url, json={"name": "x"})).status_code == 404
    assert (await admin.delete(url)).status_code == 404


async def test_patch_put_history_and_if_match(login, store) -> None:
    manager = await login("manager")
    facility = await make_facility(manager, description="old")
    url = f"/api/facilities/{facility['id']}/"
    etag = (await manager.get(url)).headers["ETag"]
    patched = await manager.patch(url, json={"status": "degraded"}, headers={"If-Match": etag})
    assert patched.status_code == 200 and patched.json()["status"] == "degraded"
    stale = await manager.patch(url, json={"status": "offline"}, headers={"If-Match": etag})
    assert stale.status_code == 412
    stale_delete = await (await login("admin")).delete(url, headers={"If-Match": etag})
    assert stale_delete.status_code == 412
    assert (await manager.get(url)).json()["status"] == "degraded"
    put = await manager.put(url, json={"name": "Only"})
    assert put.status_code == 400 and set(put.json()) == {"location", "kind"}
    put = await manager.put(
        url, json={"name": "Renamed", "location": facility["location"], "kind": "office"}
    )
    assert put.status_code == 200
    assert put.json()["description"] == "old"  # as DRF: PUT keeps omitted optional fields
    async with store.connection() as conn:
        rows = await conn.fetch_all(
            sa.select(history.c.changes)
            .where(history.c.subject == "facilities", history.c.subject_id == facility["id"])
            .order_by(history.c.id)
        )
    assert [row["changes"] for row in rows] == [
        {"status": ["operational", "degraded"]},
        {
            "name": [facility["name"], "Renamed"],
            "kind": ["studio", "office"],
        },
    ]


async def test_filters_search_and_ordering(login) -> None:
    manager = await login("manager")
    north = await make_location(manager)
    south = await make_location(manager)
    await make_facility(manager, name="b-studio", location=north["id"], description="Main hall")
    await make_facility(
        manager, name="a-tx", location=south["id"], kind="transmitter", status="offline"
    )
    await make_facility(manager, name="c-dc", location=south["id"], kind="datacenter")

    async def names(query: str) -> list[str]:
        response = await manager.get(f"/api/facilities/?{query}")
        assert response.status_code == 200, response.text
        return [item["name"] for item in response.json()["results"]]

    assert await names("") == ["a-tx", "b-studio", "c-dc"]
    assert await names("ordering=-name") == ["c-dc", "b-studio", "a-tx"]
    assert await names(f"location={south['id']}") == ["a-tx", "c-dc"]
    assert await names("kind=transmitter,studio") == ["a-tx", "b-studio"]
    assert await names("status=offline") == ["a-tx"]
    assert await names("search=MAIN") == ["b-studio"]
    assert await names("search=dc") == ["c-dc"]
    bad = await manager.get("/api/facilities/?kind=bunker&location=abc")
    assert bad.status_code == 400 and set(bad.json()) == {"kind", "location"}


async def test_deleting_referenced_facility_or_location_is_409(login, store) -> None:
    manager = await login("manager")
    admin = await login("admin")
    facility = await make_facility(manager)
    location_url = f"/api/locations/{facility['location']}/"
    # A location with a facility is referenced.
    response = await admin.delete(location_url)
    assert response.status_code == 409
    assert "detail" in response.json()
    await _reference_facility(store, facility["id"], manager.user["user"])
    response = await admin.delete(f"/api/facilities/{facility['id']}/")
    assert response.status_code == 409
    assert (await admin.get(f"/api/facilities/{facility['id']}/")).status_code == 200
    assert (await admin.get(location_url)).status_code == 200
    async with store.connection() as conn:
        deleted = await conn.fetch_val(
            sa.select(sa.func.count()).where(events.c.action == "deleted")
        )
    assert deleted == 0
