"""Profiles: reads for all, admin user management, own contact fields, passwords, deactivation."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import orjson
import pytest
import sqlalchemy as sa

from db.tables import events, history, users
from domain.actors import Actor, Role
from domain.errors import ValidationFailed
from domain.profiles import update_profile
from tests.builders.facilities import make_facility, make_location
from tests.builders.profiles import bearer_client, session_client
from tests.builders.scheduled_events import make_scheduled_event
from tests.builders.shifts import insert_shift
from tests.builders.time_entries import make_time_entry
from tests.builders.time_off import make_time_off

NEW_PASSWORD = "a-new-long-passphrase"


def _url(profile: dict) -> str:
    return f"/api/profiles/{profile['id']}/"


async def _can_read(client) -> int:
    return (await client.get("/api/auth/user/")).status_code


async def test_every_role_reads_list_and_detail(login, client) -> None:
    viewer = await login("viewer", first_name="Vera", last_name="Viewer")
    response = await viewer.get("/api/profiles/")
    assert response.status_code == 200
    assert response.json()["count"] == 1
    detail = await viewer.get(_url(viewer.user))
    assert detail.status_code == 200 and detail.headers["ETag"]
    body = detail.json()
    assert body["full_name"] == "Vera Viewer"
    assert body["user"] == viewer.user["user"]
    assert body["profile_image"] is None and body["location"] is None
    assert "password" not in body
    assert (await client.get("/api/profiles/")).status_code == 401
    assert (await viewer.get("/api/profiles/999999/")).status_code == 404


async def test_admin_creates_user_with_profile(login, app, store) -> None:
    admin = await login("admin")
    manager = await login("manager")
    location = await make_location(manager)
    body = {
        "username": "new.user",
        "password": NEW_PASSWORD,
        "role": "manager",
        "email": "new@example.com",
        "first_name": "New",
        "title": "Engineer",
        "location": location["id"],
        "email_notifications": False,
    }
    response = await admin.post("/api/profiles/", json=body)
    assert response.status_code == 201, response.text
    created = response.json()
    assert "password" not in created
    assert created["role"] == "manager" and created["location"] == location["id"]
    assert created["email_notifications"] is False and created["is_active"] is True
    fetched = await admin.get(_url(created))
    assert fetched.json() == created
    new_client = await bearer_client(app, {**created, "password": NEW_PASSWORD})
    assert await _can_read(new_client) == 200
    await new_client.aclose()
    async with store.connection() as conn:
        last = await conn.fetch_one(
            sa.select(events).where(events.c.topic == "profiles").order_by(events.c.id.desc())
        )
    assert last["object_id"] == created["id"]
    assert (await manager.post("/api/profiles/", json={**body, "username": "x"})).status_code == 403


async def test_create_validation(login) -> None:
    admin = await login("admin")
    base = {"username": "someone", "password": NEW_PASSWORD}
    assert (await admin.post("/api/profiles/", json=base)).status_code == 201
    clash = await admin.post("/api/profiles/", json=base)
    assert clash.status_code == 400
    assert clash.json() == {"username": ["A user with that username already exists."]}
    for password in ("short", "1234567890123", "someone-else"):
        bad = await admin.post(
            "/api/profiles/", json={"username": "someone-else", "password": password}
        )
        assert bad.status_code == 400 and list(bad.json()) == ["password"], password
    bad = await admin.post("/api/profiles/", json={"username": "bad name!", "role": "boss"})
    assert bad.status_code == 400 and set(bad.json()) == {"username", "role", "password"}
    bad = await admin.post(
        "/api/profiles/", json={**base, "username": "u2", "location": 999999, "email": "nope"}
    )
    assert bad.status_code == 400 and set(bad.json()) == {"email"}
    bad = await admin.post("/api/profiles/", json={**base, "username": "u2", "location": 999999})
    assert bad.json() == {"location": ['Invalid pk "999999" - object does not exist.']}


async def test_operator_edits_own_contact_fields(login, store) -> None:
    operator = await login("operator")
    manager = await login("manager")
    location = await make_location(manager)
    changes = {
        "email": "me@example.org",
        "first_name": "Olga",
        "last_name": "Op",
        "title": "MCR operator",
        "department": "Playout",
        "phone": "+44 20 1234",
        "location": location["id"],
        "email_notifications": False,
    }
    response = await operator.patch(_url(operator.user), json=changes)
    assert response.status_code == 200, response.text
    assert {key: response.json()[key] for key in changes} == changes
    assert response.json()["full_name"] == "Olga Op"
    # Read-only values sent unchanged are ignored, as DRF does.
    same = await operator.patch(
        _url(operator.user), json={"role": "operator", "is_active": True, "id": 5, "user": 9}
    )
    assert same.status_code == 200
    async with store.connection() as conn:
        rows = await conn.fetch_all(
            sa.select(history.c.changes, history.c.actor_id).where(
                history.c.subject == "profiles", history.c.subject_id == operator.user["id"]
            )
        )
        event = await conn.fetch_one(
            sa.select(events).where(events.c.topic == "profiles", events.c.action == "updated")
        )
    assert len(rows) == 1 and rows[0]["actor_id"] == operator.user["user"]
    assert rows[0]["changes"]["first_name"] == ["", "Olga"]
    assert event["object_id"] == operator.user["id"]


@pytest.mark.parametrize(
    "change", [{"role": "admin"}, {"is_active": False}, {"username": "renamed"}]
)
async def test_non_admin_may_not_change_admin_fields(login, change) -> None:
    for role in ("operator", "manager"):
        user = await login(role)
        response = await user.patch(_url(user.user), json=change)
        assert response.status_code == 403, role
        current = (await user.get(_url(user.user))).json()
        assert (current["role"], current["is_active"], current["username"]) == (
            role,
            True,
            user.user["username"],
        )


async def test_others_profiles_are_read_only_for_non_admins(login) -> None:
    target = await login("operator")
    for role in ("viewer", "operator", "manager"):
        other = await login(role)
        response = await other.patch(_url(target.user), json={"title": "x"})
        assert response.status_code == 403, role
        response = await other.put(_url(target.user), json={"username": target.user["username"]})
        assert response.status_code == 403, role
        assert (await other.delete(_url(target.user))).status_code == 403, role


async def test_viewer_may_not_edit_contact_fields_but_may_change_password(login, app) -> None:
    viewer = await login("viewer")
    assert (await viewer.patch(_url(viewer.user), json={"title": "x"})).status_code == 403
    response = await viewer.patch(
        _url(viewer.user),
        json={"password": NEW_PASSWORD, "current_password": viewer.user["password"]},
    )
    assert response.status_code == 200


async def test_admin_edits_everything(login, store) -> None:
    admin = await login("admin")
    target = await login("operator")
    response = await admin.patch(
        _url(target.user),
        json={"role": "manager", "username": "promoted", "title": "Lead", "is_active": True},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["role"], body["username"], body["title"]) == ("manager", "promoted", "Lead")
    taken = await admin.patch(_url(target.user), json={"username": admin.user["username"]})
    assert taken.status_code == 400 and list(taken.json()) == ["username"]
    put = await admin.put(_url(target.user), json={"title": "no username"})
    assert put.status_code == 400 and list(put.json()) == ["username"]
    bad = await admin.patch(_url(target.user), json={"role": "boss", "location": 999999})
    assert bad.status_code == 400 and list(bad.json()) == ["role"]


async def test_stale_if_match_is_412(login) -> None:
    operator = await login("operator")
    url = _url(operator.user)
    etag = (await operator.get(url)).headers["ETag"]
    assert (
        await operator.patch(url, json={"title": "A"}, headers={"If-Match": etag})
    ).status_code == 200
    stale = await operator.patch(url, json={"title": "B"}, headers={"If-Match": etag})
    assert stale.status_code == 412
    assert (await operator.get(url)).json()["title"] == "A"
    admin = await login("admin")
    assert (await admin.delete(url, headers={"If-Match": etag})).status_code == 412


async def test_own_password_change_needs_current_and_ends_other_credentials(
    login, app, session_login
) -> None:
    browser = await session_login("operator")
    user = browser.user
    other_browser = await session_client(app, user)
    script = await bearer_client(app, user)
    url = _url(user)
    missing = await browser.patch(url, json={"password": NEW_PASSWORD})
    assert missing.status_code == 400 and list(missing.json()) == ["current_password"]
    wrong = await browser.patch(
        url, json={"password": NEW_PASSWORD, "current_password": "not-my-password"}
    )
    assert wrong.status_code == 400 and list(wrong.json()) == ["current_password"]
    weak = await browser.patch(url, json={"password": "123", "current_password": user["password"]})
    assert weak.status_code == 400 and list(weak.json()) == ["password"]
    assert await _can_read(other_browser) == 200 and await _can_read(script) == 200
    ok = await browser.patch(
        url, json={"password": NEW_PASSWORD, "current_password": user["password"]}
    )
    assert ok.status_code == 200, ok.text
    assert "password" not in ok.json()
    assert await _can_read(browser) == 200  # the session that changed it stays
    assert await _can_read(other_browser) == 401
    assert await _can_read(script) == 401
    old = await app_token_status(app, user["username"], user["password"])
    new = await app_token_status(app, user["username"], NEW_PASSWORD)
    assert (old, new) == (401, 200)
    for closing in (other_browser, script):
        await closing.aclose()


async def app_token_status(app, username: str, password: str) -> int:
    import httpx

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as anonymous:
        response = await anonymous.post(
            "/api/auth/token/", json={"username": username, "password": password}
        )
    return response.status_code


async def test_admin_sets_password_alone_and_ends_sessions(login, app, session_login) -> None:
    admin = await login("admin")
    browser = await session_login("operator")
    script = await bearer_client(app, browser.user)
    response = await admin.patch(_url(browser.user), json={"password": NEW_PASSWORD})
    assert response.status_code == 200, response.text
    assert await _can_read(browser) == 401
    assert await _can_read(script) == 401
    assert await app_token_status(app, browser.user["username"], NEW_PASSWORD) == 200
    await script.aclose()


async def test_deactivation_ends_sessions_and_tokens(login, app, session_login) -> None:
    admin = await login("admin")
    browser = await session_login("operator")
    script = await bearer_client(app, browser.user)
    response = await admin.patch(_url(browser.user), json={"is_active": False})
    assert response.status_code == 200 and response.json()["is_active"] is False
    assert await _can_read(browser) == 401
    assert await _can_read(script) == 401
    status = await app_token_status(app, browser.user["username"], browser.user["password"])
    assert status in (400, 401)
    listed = await admin.get("/api/profiles/?is_active=false")
    assert [item["id"] for item in listed.json()["results"]] == [browser.user["id"]]
    await script.aclose()


async def test_filters_search_and_ordering(login) -> None:
    manager = await login("manager", username="m-zed", department="News")
    location = await make_location(manager)
    await login("viewer", username="v-amy", title="Producer", location_id=location["id"])
    await login("operator", username="o-bob", last_name="Smith", department="News")
    admin = await login("admin", username="a-cat", email="cat@corp.example")

    async def names(query: str) -> list[str]:
        response = await admin.get(f"/api/profiles/?{query}")
        assert response.status_code == 200, response.text
        return [item["username"] for item in response.json()["results"]]

    assert await names("") == ["a-cat", "m-zed", "o-bob", "v-amy"]
    assert await names("ordering=-username") == ["v-amy", "o-bob", "m-zed", "a-cat"]
    assert await names("role=viewer,operator") == ["o-bob", "v-amy"]
    assert await names("department=News") == ["m-zed", "o-bob"]
    assert await names(f"location={location['id']}") == ["v-amy"]
    assert await names("is_active=true&role=admin") == ["a-cat"]
    assert await names("search=smith") == ["o-bob"]
    assert await names("search=producer") == ["v-amy"]
    assert await names("search=corp.example") == ["a-cat"]
    assert await names("search=zed") == ["m-zed"]
    bad = await admin.get("/api/profiles/?role=boss&is_active=maybe&location=x")
    assert bad.status_code == 400 and set(bad.json()) == {"role", "is_active", "location"}


async def test_admin_deletes_unreferenced_user_but_referenced_is_409(login, store) -> None:
    admin = await login("admin")
    manager = await login("manager")
    unused = await login("viewer")
    busy = await login("operator")
    facility = await make_facility(manager)
    start = datetime(2026, 11, 26, 8, tzinfo=UTC)
    async with store.unit_of_work(actor_id=None) as uow:
        await insert_shift(
            uow.conn, user_id=busy.user["user"], facility_id=facility["id"], start=start
        )
    assert (await admin.delete(_url(busy.user))).status_code == 409
    assert (await admin.get(_url(busy.user))).status_code == 200
    assert (await admin.delete(_url(unused.user))).status_code == 204
    assert (await admin.get(_url(unused.user))).status_code == 404
    assert (await admin.delete("/api/profiles/999999/")).status_code == 404


async def test_deleting_a_reviewer_is_a_change_of_what_they_reviewed_and_attend(
    login, store
) -> None:
    """The database would null `reviewed_by` and `created_by` and drop the attendance with
    the user (ON DELETE SET NULL, CASCADE); BMS tells each as a change of that row: an
    `updated` event with what a GET now shows, and a history entry."""
    admin = await login("admin")
    reviewer = await login("manager")
    operator = await login("operator")
    gone, stays = reviewer.user["user"], operator.user["user"]
    entry = await make_time_entry(operator)
    entry_url = f"/api/time-entries/{entry['id']}/"
    assert (await operator.patch(entry_url, json={"status": "submitted"})).status_code == 200
    assert (await reviewer.patch(entry_url, json={"status": "approved"})).status_code == 200
    request = await make_time_off(operator)
    request_url = f"/api/time-off-requests/{request['id']}/"
    assert (await reviewer.patch(request_url, json={"status": "approved"})).status_code == 200
    event = await make_scheduled_event(reviewer, attendees=[gone, stays])
    other = await make_scheduled_event(admin, attendees=[stays])
    async with store.connection() as conn:
        newest = await conn.fetch_val(sa.select(sa.func.max(events.c.id)))

    assert (await admin.delete(_url(reviewer.user))).status_code == 204

    async with store.connection() as conn:
        rows = await conn.fetch_all(
            sa.select(events).where(events.c.id > newest).order_by(events.c.id)
        )
    sent = {(row["topic"], row["action"], row["object_id"]): row for row in rows}
    assert set(sent) == {
        ("time-entries", "updated", entry["id"]),
        ("time-off-requests", "updated", request["id"]),
        ("scheduled-events", "updated", event["id"]),
        ("profiles", "deleted", reviewer.user["id"]),
    }, set(sent)
    for (topic, _, object_id), row in sent.items():
        if topic == "profiles":
            continue
        data = orjson.loads(row["data"])
        assert data == (await admin.get(f"/api/{topic}/{object_id}/")).json()
    assert orjson.loads(sent["time-entries", "updated", entry["id"]]["data"])["reviewed_by"] is None
    assert (
        orjson.loads(sent["time-off-requests", "updated", request["id"]]["data"])["reviewed_by"]
        is None
    )
    changed_event = orjson.loads(sent["scheduled-events", "updated", event["id"]]["data"])
    assert changed_event["attendees"] == [stays] and changed_event["created_by"] is None
    assert (await admin.get(f"/api/scheduled-events/{other['id']}/")).json() == other
    async with store.connection() as conn:
        written = await conn.fetch_all(
            sa.select(history.c.subject, history.c.subject_id, history.c.changes)
            .where(history.c.actor_id == admin.user["user"])
            .order_by(history.c.id)
        )
    assert [(row["subject"], row["subject_id"], row["changes"]) for row in written] == [
        ("time-entries", entry["id"], {"reviewed_by": [gone, None]}),
        ("time-off-requests", request["id"], {"reviewed_by": [gone, None]}),
        (
            "scheduled-events",
            event["id"],
            {"attendees": [sorted([gone, stays]), [stays]], "created_by": [gone, None]},
        ),
    ]


async def test_the_last_active_admin_stays_one(login) -> None:
    admin = await login("admin")
    me = _url(admin.user)
    demote = await admin.patch(me, json={"role": "manager"})
    assert demote.status_code == 400
    assert demote.json() == {"role": ["At least one active admin must remain."]}
    deactivate = await admin.patch(me, json={"is_active": False})
    assert deactivate.status_code == 400 and list(deactivate.json()) == ["is_active"]
    delete = await admin.delete(me)
    assert delete.status_code == 409
    assert delete.json() == {"detail": "At least one active admin must remain."}
    assert (await admin.get(me)).json()["role"] == "admin"

    other = await login("admin")
    assert (await admin.patch(me, json={"role": "manager"})).status_code == 200
    assert (await other.patch(me, json={"role": "admin"})).status_code == 200
    assert (await other.delete(me)).status_code == 204


async def test_two_admins_demoting_each_other_at_once_leave_one(store, make_user) -> None:
    if not store.is_postgres:
        pytest.skip("SQLite has a single writer: the two cannot interleave")
    first, second = await make_user("admin"), await make_user("admin")

    def admin(user: dict) -> Actor:
        return Actor(id=user["user"], username=user["username"], role=Role.ADMIN)

    async def demote(actor: Actor, target: dict) -> None:
        async with store.unit_of_work(actor_id=actor.id) as uow:
            await update_profile(uow, actor, target["id"], {"role": "manager"}, partial=True)

    async def waiting_for_a_lock() -> bool:
        async with store.connection() as conn:
            query = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            return bool(await conn.fetch_val(query))

    async with store.unit_of_work(actor_id=first["user"]) as uow:
        await update_profile(uow, admin(first), second["id"], {"role": "manager"}, partial=True)
        # The other demotion starts while this one is uncommitted: it must wait for it.
        other = asyncio.create_task(demote(admin(second), first))
        async with asyncio.timeout(10):
            while not other.done() and not await waiting_for_a_lock():
                await asyncio.sleep(0.01)
    with pytest.raises(ValidationFailed):
        await other
    async with store.connection() as conn:
        admins = await conn.fetch_val(
            sa.select(sa.func.count()).where(users.c.role == "admin", users.c.is_active)
        )
    assert admins == 1
