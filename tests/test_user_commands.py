"""`bms user ...`, `bms createuser` and the demo banner: account care without the API (#9)."""

from __future__ import annotations

import asyncio
import re

import pytest
import sqlalchemy as sa

from bms.admin import create_user_command
from bms.demo import seed_demo
from bms.users_cli import UserCommandFailed, change_user, list_users, run_action, unlock_user
from db.tables import users
from domain.errors import ValidationFailed
from domain.profiles import LAST_ADMIN

NEW_PASSWORD = "a-brand-new-passphrase-42"
TOKEN = "/api/auth/token/"


async def _token_status(client, username: str, password: str) -> int:
    response = await client.post(TOKEN, json={"username": username, "password": password})
    return response.status_code


async def test_set_password_replaces_the_old_one(client, make_user, store) -> None:
    user = await make_user("operator")
    await change_user(store, user["username"], {"password": NEW_PASSWORD})
    assert await _token_status(client, user["username"], NEW_PASSWORD) == 200
    assert await _token_status(client, user["username"], user["password"]) == 401
    with pytest.raises(ValidationFailed) as weak:
        await change_user(store, user["username"], {"password": "123"})
    assert list(weak.value.errors) == ["password"]


async def test_unlock_lifts_a_lockout(client, make_user, store) -> None:
    user = await make_user("operator")
    for _ in range(5):
        assert await _token_status(client, user["username"], "wrong-wrong-wrong") == 401
    assert await _token_status(client, user["username"], user["password"]) == 429
    assert await unlock_user(store, user["username"]) >= 5
    assert await _token_status(client, user["username"], user["password"]) == 200


async def test_deactivate_ends_access_but_keeps_the_last_admin(client, make_user, store) -> None:
    user = await make_user("operator")
    await change_user(store, user["username"], {"is_active": False})
    assert await _token_status(client, user["username"], user["password"]) == 401
    admin = await make_user("admin")
    with pytest.raises(ValidationFailed) as refused:
        await change_user(store, admin["username"], {"is_active": False})
    assert refused.value.errors == {"is_active": [LAST_ADMIN]}


async def test_list_shows_roles_and_unknown_names_are_refused(make_user, store) -> None:
    manager = await make_user("manager")
    lines = await list_users(store, since=store.clock())
    assert lines[0].split()[:2] == ["USERNAME", "ROLE"]
    assert any(line.split()[:3] == [manager["username"], "manager", "yes"] for line in lines)
    with pytest.raises(UserCommandFailed, match="no user named 'nobody'"):
        await unlock_user(store, "nobody")


async def test_a_taken_username_reads_the_same_in_the_cli_and_the_api(
    settings, login, make_user, store, capsys
) -> None:
    taken = await make_user("operator")
    status = await create_user_command(
        settings, username=taken["username"], role="viewer", email="", password=NEW_PASSWORD,
        generated=False,
    )  # fmt: skip
    assert status == 1
    message = "A user with that username already exists."
    assert capsys.readouterr().err.strip() == f"bms: username: {message}"
    admin = await login("admin")
    response = await admin.post(
        "/api/profiles/", json={"username": taken["username"], "password": NEW_PASSWORD}
    )
    assert response.status_code == 400 and response.json() == {"username": [message]}


async def test_the_demo_banner_names_real_roles_and_how_to_reset(settings, store) -> None:
    lines: list[str] = []
    assert await seed_demo(settings, announce=lines.append)
    banner = "\n".join(lines)
    named = dict(re.findall(r"'([\w.]+)' \((\w+)\)", banner))
    assert set(named.values()) == {"admin", "manager", "operator", "viewer"}
    async with store.connection() as conn:
        for username, role in named.items():
            query = sa.select(users.c.role).where(users.c.username == username)
            stored = await conn.fetch_val(query)
            assert stored == role, username
    assert "bms user set-password" in banner


async def test_a_deactivation_from_the_command_line_ends_access_on_running_servers_at_once(
    backend, app, settings, login
) -> None:
    """The command broadcasts the revocation: servers forget the cached credential and
    close its sockets without waiting for their periodic checks."""
    if backend != "postgres":
        pytest.skip("embedded mode has no channel to the running server")
    user = await login("operator")
    assert (await user.get("/api/auth/user/")).status_code == 200  # now cached by the server
    heard = asyncio.Event()
    listeners = app.state.realtime.hub.revocation_listeners
    listeners.append(hear := lambda _user_id: heard.set())
    try:

        async def deactivate(store) -> None:
            await change_user(store, user.user["username"], {"is_active": False})

        assert await run_action(settings, deactivate) == 0
        await asyncio.wait_for(heard.wait(), 10)
    finally:
        listeners.remove(hear)
    assert (await user.get("/api/auth/user/")).status_code == 401
