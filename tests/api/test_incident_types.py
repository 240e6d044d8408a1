"""Incident types: manager-managed, unique names, validated colours and priorities."""

from __future__ import annotations

from tests.builders.tickets import make_incident, make_incident_type


async def test_manager_creates_type_with_defaults(login) -> None:
    manager = await login("manager")
    created = await make_incident_type(manager, name="Signal loss", color="#FF8800")
    assert created["default_priority"] == "medium"
    assert created["color"] == "#ff8800"
    detail = await manager.get(f"/api/incident-types/{created['id']}/")
    assert detail.json() == created
    assert detail.headers["ETag"]


async def test_bad_color_priority_and_duplicate_name_are_400(login) -> None:
    manager = await login("manager")
    await make_incident_type(manager, name="Power")
    bad = await manager.post(
        "/api/incident-types/",
        json={"name": "X", "color": "orange", "default_priority": "urgent"},
    )
    assert bad.status_code == 400
    assert set(bad.json()) == {"color", "default_priority"}
    clash = await manager.post("/api/incident-types/", json={"name": "Power"})
    assert clash.status_code == 400
    assert list(clash.json()) == ["name"]


async def test_permissions_by_role(login) -> None:
    manager = await login("manager")
    created = await make_incident_type(manager)
    url = f"/api/incident-types/{created['id']}/"
    for role in ("viewer", "operator"):
        other = await login(role)
        assert (await other.get("/api/incident-types/")).json()["count"] == 1
        assert (await other.post("/api/incident-types/", json={"name": "Z"})).status_code == 403
        assert (await other.patch(url, json={"name": "Z"})).status_code == 403
    assert (await manager.delete(url)).status_code == 403
    admin = await login("admin")
    assert (await admin.delete(url)).status_code == 204
    assert (await admin.get(url)).status_code == 404


async def test_type_in_use_cannot_be_deleted(login) -> None:
    manager = await login("manager")
    kind = await make_incident_type(manager)
    await make_incident(manager, incident_type=kind["id"])
    admin = await login("admin")
    response = await admin.delete(f"/api/incident-types/{kind['id']}/")
    assert response.status_code == 409


async def test_search_ordering_and_stale_if_match(login) -> None:
    manager = await login("manager")
    await make_incident_type(manager, name="Audio dropout", default_priority="low")
    video = await make_incident_type(manager, name="Video freeze", default_priority="critical")
    found = (await manager.get("/api/incident-types/?search=FREEZE")).json()
    assert [row["name"] for row in found["results"]] == ["Video freeze"]
    ordered = (await manager.get("/api/incident-types/?ordering=-default_priority")).json()
    assert [row["name"] for row in ordered["results"]] == ["Video freeze", "Audio dropout"]
    url = f"/api/incident-types/{video['id']}/"
    etag = (await manager.get(url)).headers["ETag"]
    ok = await manager.patch(url, json={"description": "Frozen"}, headers={"If-Match": etag})
    assert ok.status_code == 200
    stale = await manager.patch(url, json={"description": "Again"}, headers={"If-Match": etag})
    assert stale.status_code == 412
    assert (await manager.get(url)).json()["description"] == "Frozen"
