"""Authentication per contract section 2: sessions + CSRF, tokens, throttling, revocation."""

from __future__ import annotations

import httpx
import sqlalchemy as sa

from db.tables import users

LOGIN = "/api/auth/login/"


async def _csrf(client: httpx.AsyncClient) -> str:
    response = await client.get("/api/csrf/")
    assert response.status_code == 200
    assert client.cookies["csrftoken"] == response.json()["csrfToken"]
    return response.json()["csrfToken"]


async def test_browser_login_flow_sets_secure_cookies(client, make_user) -> None:
    user = await make_user("operator")
    token = await _csrf(client)
    response = await client.post(
        LOGIN,
        json={"username": user["username"], "password": user["password"]},
        headers={"X-CSRFToken": token},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["username"] == user["username"] and body["role"] == "operator"
    assert body["profile"]["id"] == user["id"]
    cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith("sessionid="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    me = await client.get("/api/auth/user/")
    assert me.status_code == 200 and me.json()["id"] == user["user"]


async def test_login_without_or_with_wrong_csrf_is_403(client, make_user) -> None:
    user = await make_user()
    credentials = {"username": user["username"], "password": user["password"]}
    response = await client.post(LOGIN, json=credentials)
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    await _csrf(client)
    response = await client.post(LOGIN, json=credentials, headers={"X-CSRFToken": "wrong"})
    assert response.status_code == 403
    assert response.json()["detail"] == "CSRF Failed: CSRF token incorrect."


async def test_session_write_needs_csrf_header(session_login) -> None:
    browser = await session_login("manager")
    body = {"name": "Site", "code": "S1", "timezone": "UTC"}
    token = browser.headers.pop("X-CSRFToken")
    assert (await browser.post("/api/locations/", json=body)).status_code == 403
    response = await browser.post("/api/locations/", json=body, headers={"X-CSRFToken": token})
    assert response.status_code == 201


async def test_unsafe_session_request_from_foreign_origin_is_403(session_login) -> None:
    browser = await session_login("manager")
    body = {"name": "Site", "code": "S1", "timezone": "UTC"}
    evil = await browser.post("/api/locations/", json=body, headers={"Origin": "https://evil.test"})
    assert evil.status_code == 403
    assert "Origin checking failed" in evil.json()["detail"]
    listed = await browser.post(
        "/api/locations/", json=body, headers={"Origin": "http://dashboard.example"}
    )
    assert listed.status_code == 201


async def test_cors_preflight_for_allowed_origin(client) -> None:
    response = await client.options(
        "/api/locations/",
        headers={
            "Origin": "http://dashboard.example",
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "X-CSRFToken, If-Match",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "http://dashboard.example"
    assert response.headers["access-control-allow-credentials"] == "true"
    denied = await client.options(
        "/api/locations/",
        headers={"Origin": "https://evil.test", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in denied.headers


async def test_session_id_changes_at_login(client, make_user) -> None:
    """Session fixation: a session id planted before login is never the one used after."""
    first = await make_user()
    second = await make_user()
    token = await _csrf(client)
    await client.post(
        LOGIN,
        json={"username": first["username"], "password": first["password"]},
        headers={"X-CSRFToken": token},
    )
    planted = client.cookies["sessionid"]
    token = client.cookies["csrftoken"]
    await client.post(
        LOGIN,
        json={"username": second["username"], "password": second["password"]},
        headers={"X-CSRFToken": token},
    )
    assert client.cookies["sessionid"] != planted
    async with httpx.AsyncClient(transport=client._transport, base_url="http://testserver") as old:
        old.cookies.set("sessionid", planted)
        assert (await old.get("/api/auth/user/")).status_code == 401


async def test_bad_credentials_then_throttled_even_with_right_password(client, make_user) -> None:
    user = await make_user()
    token = await _csrf(client)
    headers = {"X-CSRFToken": token}
    for _ in range(5):
        response = await client.post(
            LOGIN,
            json={"username": user["username"], "password": "nope-nope-nope"},
            headers=headers,
        )
        assert response.status_code == 400
        assert response.json() == {"detail": "Invalid username or password."}
    response = await client.post(
        LOGIN, json={"username": user["username"], "password": user["password"]}, headers=headers
    )
    assert response.status_code == 429
    assert 0 < int(response.headers["Retry-After"]) <= 15 * 60


async def test_logout_destroys_session(session_login) -> None:
    browser = await session_login()
    assert (await browser.post("/api/auth/logout/")).status_code == 204
    assert (await browser.get("/api/auth/user/")).status_code == 401


async def test_tokens_refresh_and_revocation_on_logout(client, make_user) -> None:
    user = await make_user("viewer")
    credentials = {"username": user["username"], "password": user["password"]}
    assert (
        await client.post("/api/auth/token/", json={**credentials, "password": "x"})
    ).status_code == 401
    pair = (await client.post("/api/auth/token/", json=credentials)).json()
    bearer = {"Authorization": f"Bearer {pair['access']}"}
    assert (await client.get("/api/auth/user/", headers=bearer)).status_code == 200
    refreshed = await client.post("/api/auth/token/refresh/", json={"refresh": pair["refresh"]})
    assert refreshed.status_code == 200
    # Bearer requests need no CSRF token.
    assert (await client.post("/api/auth/logout/", headers=bearer)).status_code == 204
    revoked = await client.get("/api/auth/user/", headers=bearer)
    assert revoked.status_code == 401
    # The refreshed pair is of the same family (one login): logout ended it too.
    other = {"Authorization": f"Bearer {refreshed.json()['access']}"}
    assert (await client.get("/api/auth/user/", headers=other)).status_code == 401
    bad = await client.post("/api/auth/token/refresh/", json={"refresh": "garbage"})
    assert bad.status_code == 401


async def test_deactivated_user_loses_session_and_tokens_at_once(
    store, session_login, login
) -> None:
    browser = await session_login("operator")
    scripted = await login("operator")
    for who in (browser.user, scripted.user):
        async with store.unit_of_work(actor_id=None) as uow:
            await uow.conn.execute(
                users.update().where(users.c.id == who["user"]).values(is_active=sa.false())
            )
    assert (await browser.get("/api/auth/user/")).status_code == 401
    assert (await scripted.get("/api/auth/user/")).status_code == 401


async def test_malformed_authorization_header_is_401(client) -> None:
    response = await client.get("/api/locations/", headers={"Authorization": "Basic abc"})
    assert response.status_code == 401


async def test_a_streamed_body_over_the_limit_is_413(login) -> None:
    """No Content-Length: the limit is counted while the body arrives, and the 413 goes out
    because no response had started yet."""
    manager = await login("manager")

    async def chunks():
        yield b'{"name": "'
        for _ in range(20):
            yield b"x" * 65536
        yield b'"}'

    response = await manager.post(
        "/api/locations/", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert "too large" in response.json()["detail"]


async def test_body_limits_and_media_type(login) -> None:
    manager = await login("manager")
    huge = b'{"name": "' + b"x" * (1024 * 1024 + 10) + b'"}'
    response = await manager.post(
        "/api/locations/", content=huge, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    response = await manager.post(
        "/api/locations/",
        content=b"name=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 415
    response = await manager.post(
        "/api/locations/", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    response = await manager.post("/api/locations/", json=[1, 2])
    assert response.status_code == 400 and "non_field_errors" in response.json()


async def test_request_id_is_echoed_or_made(client) -> None:
    response = await client.get("/api/csrf/", headers={"X-Request-ID": "abc-123"})
    assert response.headers["X-Request-ID"] == "abc-123"
    made = await client.get("/api/csrf/")
    assert len(made.headers["X-Request-ID"]) == 32


async def test_bad_filter_values_are_400_keyed_by_filter(login) -> None:
    viewer = await login("viewer")
    response = await viewer.get("/api/profiles/", params={"location": "1 OR 1=1"})
    assert response.status_code == 400
    assert "location" in response.json()


async def test_ending_credentials_tells_the_realtime_layer_after_commit(
    store, session_login, login
) -> None:
    """Logout and password change report revocations (the hub closes those sockets)."""
    told: list[tuple[int, str | None]] = []

    async def revoke(revocation) -> None:
        told.append((revocation.user_id, revocation.credential_id))

    with store.sink.plugged(revoke=revoke):
        scripted = await login("operator")
        browser = await session_login("operator")
        assert (await scripted.post("/api/auth/logout/")).status_code == 204
        assert told[-1][0] == scripted.user["user"] and told[-1][1]
        profile_url = f"/api/profiles/{browser.user['id']}/"
        changed = await browser.patch(
            profile_url,
            json={
                "password": "another-long-password",
                "current_password": browser.user["password"],
            },
        )
        assert changed.status_code == 200, changed.text
        assert (browser.user["user"], None) in told
