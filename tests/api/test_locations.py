"""Locations: the reference resource for CRUD, lists, ETags and permissions."""

from __future__ import annotations

from typing import Any

import httpx

LONDON = {"name": "London Broadcast Centre", "code": "LDN", "timezone": "Europe/London"}


async def make_location(client: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    response = await client.post("/api/locations/", json={**LONDON, **overrides})
    assert response.status_code == 201, response.text
    return response.json()


async def test_manager_creates_and_reads_location(login) -> None:
    manager = await login("manager")
    created = await make_location(manager, address="1 Wood Lane")
    assert created["timezone"] == "Europe/London"
    assert created["created_at"].endswith("Z")
    detail = await manager.get(f"/api/locations/{created['id']}/")
    assert detail.status_code == 200
    assert detail.json() == created
    assert detail.headers["ETag"]


async def test_invalid_timezone_and_missing_fields_are_400(login) -> None:
    manager = await login("manager")
    response = await manager.post("/api/locations/", json={**LONDON, "timezone": "Mars/Olympus"})
    assert response.status_code == 400
    assert "timezone" in response.json()
    response = await manager.post("/api/locations/", json={"name": "X"})
    assert response.status_code == 400
    assert response.json()["code"] == ["This field is required."]


async def test_unique_name_clash_is_400_on_field(login) -> None:
    manager = await login("manager")
    await make_location(manager)
    response = await manager.post("/api/locations/", json={**LONDON, "code": "LD2"})
    assert response.status_code == 400
    assert list(response.json()) == ["name"]


async def test_operator_cannot_write_and_viewer_can_read(login) -> None:
    manager = await login("manager")
    created = await make_location(manager)
    operator = await login("operator")
    assert (await operator.post("/api/locations/", json=LONDON)).status_code == 403
    response = await operator.patch(f"/api/locations/{created['id']}/", json={"name": "Y"})
    assert response.status_code == 403
    viewer = await login("viewer")
    assert (await viewer.get("/api/locations/")).json()["count"] == 1


async def test_anonymous_is_401(client) -> None:
    response = await client.get("/api/locations/")
    assert response.status_code == 401
    assert response.json() == {"detail": "Authentication credentials were not provided."}


async def test_patch_put_and_stale_if_match(login) -> None:
    manager = await login("manager")
    created = await make_location(manager)
    url = f"/api/locations/{created['id']}/"
    etag = (await manager.get(url)).headers["ETag"]
    patched = await manager.patch(url, json={"address": "New"}, headers={"If-Match": etag})
    assert patched.status_code == 200
    assert patched.json()["address"] == "New"
    stale = await manager.patch(url, json={"address": "Other"}, headers={"If-Match": etag})
    assert stale.status_code == 412
    assert (await manager.get(url)).json()["address"] == "New"
    put = await manager.put(url, json={"name": "Only name"})
    assert put.status_code == 400
    put = await manager.put(url, json={**LONDON, "name": "Renamed"})
    assert put.status_code == 200 and put.json()["name"] == "Renamed"


async def test_delete_is_admin_only(login) -> None:
    manager = await login("manager")
    created = await make_location(manager)
    url = f"/api/locations/{created['id']}/"
    assert (await manager.delete(url)).status_code == 403
    admin = await login("admin")
    assert (await admin.delete(url)).status_code == 204
    assert (await admin.get(url)).status_code == 404


async def test_list_pagination_search_and_ordering(login) -> None:
    manager = await login("manager")
    for i in range(7):
        await make_location(manager, name=f"Site {i}", code=f"S{i}", address=f"Street {i % 2}")
    page = (await manager.get("/api/locations/?page_size=3&ordering=-name")).json()
    assert page["count"] == 7
    assert [r["name"] for r in page["results"]] == ["Site 6", "Site 5", "Site 4"]
    assert page["previous"] is None
    assert page["next"].startswith("http://testserver/api/locations/?")
    assert "ordering=-name" in page["next"] and "page=2" in page["next"]
    last = (await manager.get("/api/locations/?page_size=3&page=3")).json()
    assert len(last["results"]) == 1 and last["next"] is None
    beyond = await manager.get("/api/locations/?page_size=3&page=4")
    assert beyond.status_code == 404
    assert beyond.json() == {"detail": "Invalid page."}
    found = (await manager.get("/api/locations/?search=street 1")).json()
    assert found["count"] == 3
    clamped = (await manager.get("/api/locations/?page_size=100000")).json()
    assert clamped["count"] == 7


async def test_injection_shaped_search_is_just_text(login) -> None:
    manager = await login("manager")
    await make_location(manager)
    for term in ["'; DROP TABLE locations; --", "%", "_", "\\", "' OR 1=1 --"]:
        response = await manager.get("/api/locations/", params={"search": term})
        assert response.status_code == 200
        assert response.json()["count"] == 0
    assert (await manager.get("/api/locations/")).json()["count"] == 1


async def test_unknown_api_path_and_method(login) -> None:
    manager = await login("manager")
    response = await manager.get("/api/nothing-here/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}
    assert (await manager.get("/api/locations/abc/")).status_code == 404
