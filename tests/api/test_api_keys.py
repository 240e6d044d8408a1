"""API keys (contract 5, v1.1): shown once, hashed, scoped, owned, revocable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa

from db.store import Store
from db.tables import api_keys

KEYS = "/api/api-keys/"


async def _create(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    body.setdefault("name", "wall MCR 1")
    response = await client.post(KEYS, json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _with_key(app_client: httpx.AsyncClient, key: str) -> httpx.AsyncClient:
    """A client of the same app that authenticates with `key` only."""
    return httpx.AsyncClient(
        transport=app_client._transport,  # the app under test
        base_url="http://testserver",
        headers={"Authorization": f"Bearer {key}"},
    )


async def test_secret_is_shown_once_with_a_prefix_and_stored_only_as_a_hash(
    login, store: Store
) -> None:
    owner = await login("operator")
    created = await _create(owner, scope="read")
    key = created["key"]
    assert key.startswith("bms_") and len(key) > 40
    assert created["prefix"] == key[:12] and created["user"] == owner.user["user"]
    assert created["scope"] == "read" and created["last_used_at"] is None
    listed = (await owner.get(KEYS)).json()
    assert listed["count"] == 1 and "key" not in listed["results"][0]
    assert "key" not in (await owner.get(f"{KEYS}{created['id']}/")).json()
    async with store.connection() as conn:
        row = await conn.fetch_one(sa.select(api_keys))
    assert row is not None and key not in [str(v) for v in row._mapping.values()]


async def test_key_authenticates_rest_as_its_owner_and_records_last_use(login) -> None:
    owner = await login("operator")
    created = await _create(owner)
    async with _with_key(owner, created["key"]) as by_key:
        me = await by_key.get("/api/auth/user/")
        assert me.status_code == 200 and me.json()["id"] == owner.user["user"]
    used = (await owner.get(f"{KEYS}{created['id']}/")).json()["last_used_at"]
    assert used is not None


async def test_read_key_is_refused_unsafe_methods_and_no_key_exceeds_its_owner(login) -> None:
    manager = await login("manager")
    site = {"name": "North", "code": "N", "timezone": "Europe/Oslo"}
    read = await _create(manager, scope="read")
    write = await _create(manager, scope="read-write")
    async with _with_key(manager, read["key"]) as by_read:
        refused = await by_read.post("/api/locations/", json=site)
        assert refused.status_code == 403 and "read-only" in refused.json()["detail"]
        assert (await by_read.get("/api/locations/")).status_code == 200
    async with _with_key(manager, write["key"]) as by_write:
        assert (await by_write.post("/api/locations/", json=site)).status_code == 201
    operator = await login("operator")
    op_write = await _create(operator, scope="read-write")
    async with _with_key(operator, op_write["key"]) as by_operator_key:
        other = {"name": "South", "code": "S", "timezone": "UTC"}
        assert (await by_operator_key.post("/api/locations/", json=other)).status_code == 403


async def test_users_manage_their_own_keys_and_admins_everyones(login) -> None:
    alice, bob, admin = await login("operator"), await login("operator"), await login("admin")
    mine = await _create(alice)
    assert (await bob.get(f"{KEYS}{mine['id']}/")).status_code == 404
    assert (await bob.delete(f"{KEYS}{mine['id']}/")).status_code == 404
    assert (await bob.get(KEYS)).json()["count"] == 0
    refused = await bob.post(KEYS, json={"name": "x", "user": alice.user["user"]})
    assert refused.status_code == 403
    for_bob = await _create(admin, user=bob.user["user"])
    assert for_bob["user"] == bob.user["user"]
    assert (await admin.get(KEYS)).json()["count"] == 2
    assert (await admin.get(KEYS, params={"user": alice.user["user"]})).json()["count"] == 1
    assert (await admin.delete(f"{KEYS}{mine['id']}/")).status_code == 204
    async with _with_key(alice, mine["key"]) as revoked:
        assert (await revoked.get("/api/auth/user/")).status_code == 401


async def test_input_is_validated(login) -> None:
    owner = await login("operator")
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    cases = [
        ({"name": ""}, "name"),
        ({"name": "k", "scope": "admin"}, "scope"),
        ({"name": "k", "expires_at": past}, "expires_at"),
        ({"name": "k", "expires_at": "2030-01-01T00:00:00"}, "expires_at"),
        ({"name": "k", "location": 999999}, "location"),
    ]
    for body, field in cases:
        response = await owner.post(KEYS, json=body)
        assert response.status_code == 400 and field in response.json(), (body, response.text)
    assert (await owner.patch(f"{KEYS}1/", json={"name": "x"})).status_code == 405


async def test_expired_key_and_deactivated_owner_are_refused(login, store: Store) -> None:
    owner = await login("operator")
    soon = await _create(owner, expires_at=(datetime.now(UTC) + timedelta(hours=1)).isoformat())
    forever = await _create(owner)
    async with store.connection() as conn:
        await conn.execute(
            api_keys.update()
            .where(api_keys.c.id == soon["id"])
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    async with _with_key(owner, soon["key"]) as expired:
        assert (await expired.get("/api/auth/user/")).status_code == 401
    async with _with_key(owner, forever["key"]) as by_key:
        assert (await by_key.get("/api/auth/user/")).status_code == 200
        admin = await login("admin")
        deactivated = await admin.patch(
            f"/api/profiles/{owner.user['id']}/", json={"is_active": False}
        )
        assert deactivated.status_code == 200, deactivated.text
        assert (await by_key.get("/api/auth/user/")).status_code == 401


async def test_a_key_cannot_mint_keys_but_can_revoke_itself(login) -> None:
    owner = await login("operator")
    created = await _create(owner, scope="read-write")
    async with _with_key(owner, created["key"]) as by_key:
        assert (await by_key.post(KEYS, json={"name": "child"})).status_code == 403
        assert (await by_key.delete(f"{KEYS}{created['id']}/")).status_code == 204
        assert (await by_key.get(KEYS)).status_code == 401


async def test_openapi_documents_api_keys(client) -> None:
    schema = (await client.get("/api/schema/")).json()
    assert {"get", "post"} <= set(schema["paths"]["/api/api-keys/"])
    assert "delete" in schema["paths"]["/api/api-keys/{id}/"]


async def _site(admin: httpx.AsyncClient, code: str) -> tuple[int, int]:
    """A location with one facility: (location id, facility id)."""
    location = await admin.post(
        "/api/locations/", json={"name": f"Site {code}", "code": code, "timezone": "UTC"}
    )
    facility = await admin.post(
        "/api/facilities/",
        json={"name": f"Studio {code}", "location": location.json()["id"], "kind": "studio"},
    )
    return location.json()["id"], facility.json()["id"]


async def test_a_site_restricted_key_reads_only_that_sites_rows(login) -> None:
    admin = await login("admin")
    (here, here_studio), (_, there_studio) = await _site(admin, "H"), await _site(admin, "T")
    kind = (await admin.post("/api/incident-types/", json={"name": "Fault"})).json()["id"]
    made = {}
    for name, facility in [("here", here_studio), ("there", there_studio), ("none", None)]:
        response = await admin.post(
            "/api/incident-tickets/",
            json={"title": name, "incident_type": kind, "facility": facility},
        )
        made[name] = response.json()["id"]
    refused = await admin.post(KEYS, json={"name": "w", "scope": "read-write", "location": here})
    assert refused.status_code == 400 and "scope" in refused.json()
    key = await _create(admin, scope="read", location=here)
    async with _with_key(admin, key["key"]) as wall:
        titles = {i["title"] for i in (await wall.get("/api/incident-tickets/")).json()["results"]}
        assert titles == {"here", "none"}  # a row at no site concerns every site
        assert (await wall.get(f"/api/incident-tickets/{made['there']}/")).status_code == 404
        assert (await wall.get(f"/api/incident-tickets/{made['here']}/")).status_code == 200
        facilities = (await wall.get("/api/facilities/")).json()["results"]
        assert [f["id"] for f in facilities] == [here_studio]
        assert (await wall.get(f"/api/facilities/{there_studio}/")).status_code == 404
        assert (await wall.get("/api/locations/")).json()["count"] == 2  # names of every site
