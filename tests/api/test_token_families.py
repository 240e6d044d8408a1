"""Token families (issue #10 §4, contract section 5): refresh rotates, a replayed refresh
token revokes its family, bearer logout ends the family, a password change ends feed URLs."""

from __future__ import annotations

import httpx

TOKEN = "/api/auth/token/"
REFRESH = "/api/auth/token/refresh/"


def _bearer(access: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access}"}


async def _pair(client: httpx.AsyncClient, user: dict) -> dict[str, str]:
    response = await client.post(
        TOKEN, json={"username": user["username"], "password": user["password"]}
    )
    assert response.status_code == 200, response.text
    return response.json()


async def _me(client: httpx.AsyncClient, access: str) -> int:
    return (await client.get("/api/auth/user/", headers=_bearer(access))).status_code


async def test_refresh_rotates_and_a_replay_revokes_the_family(client, make_user) -> None:
    user = await make_user()
    first = await _pair(client, user)
    elsewhere = await _pair(client, user)  # another login: another family
    rotated = await client.post(REFRESH, json={"refresh": first["refresh"]})
    assert rotated.status_code == 200
    second = rotated.json()
    assert set(second) == {"access", "refresh"} and second["refresh"] != first["refresh"]
    assert await _me(client, second["access"]) == 200
    replay = await client.post(REFRESH, json={"refresh": first["refresh"]})
    assert replay.status_code == 401
    for access in (first["access"], second["access"]):
        assert await _me(client, access) == 401
    assert (await client.post(REFRESH, json={"refresh": second["refresh"]})).status_code == 401
    assert await _me(client, elsewhere["access"]) == 200
    assert (await client.post(REFRESH, json={"refresh": elsewhere["refresh"]})).status_code == 200


async def test_bearer_logout_ends_the_whole_family(client, make_user) -> None:
    user = await make_user()
    pair = await _pair(client, user)
    other = await _pair(client, user)
    logout = await client.post("/api/auth/logout/", headers=_bearer(pair["access"]))
    assert logout.status_code == 204
    assert (await client.post(REFRESH, json={"refresh": pair["refresh"]})).status_code == 401
    assert await _me(client, other["access"]) == 200


async def test_password_change_ends_calendar_feed_urls(login, client) -> None:
    operator = await login("operator")
    created = await operator.post("/api/calendar-feeds/", json={})
    assert created.status_code == 201, created.text
    url = created.json()["url"]
    assert (await client.get(url)).status_code == 200
    changed = await operator.patch(
        f"/api/profiles/{operator.user['id']}/",
        json={"password": "a-brand-new-password", "current_password": operator.user["password"]},
    )
    assert changed.status_code == 200, changed.text
    assert (await client.get(url)).status_code == 404
