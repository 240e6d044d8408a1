"""Signing in: credentials checked against throttling, the user marked as logged in."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field

from db.store import Store
from db.tables import users
from domain.errors import AuthenticationFailed, BadRequest
from domain.passwords import hash_password, needs_rehash, verify_password
from domain.schemas import Schema, validate
from domain.throttle import LoginLimits, check_login_allowed, record_login_failure
from domain.users import get_user_row

INVALID_LOGIN = "Invalid username or password."
INVALID_TOKEN_LOGIN = "No active account found with the given credentials"  # noqa: S105


class Credentials(Schema):
    username: str = Field(min_length=1, max_length=150)
    password: str = Field(min_length=1, max_length=1024)


async def authenticate(
    store: Store,
    data: Mapping[str, Any],
    *,
    client_ip: str,
    limits: LoginLimits,
    for_token: bool = False,
) -> int:
    """Return the user id for valid credentials; throttled (429) after too many failures."""
    credentials = validate(Credentials, data)
    async with store.connection() as conn:
        await check_login_allowed(
            conn,
            username=credentials.username,
            client_ip=client_ip,
            now=store.clock(),
            limits=limits,
        )
        row = await get_user_row(conn, username=credentials.username)
    password_hash = row["password_hash"] if row else None
    valid = verify_password(password_hash, credentials.password)  # hashes even without a user
    if row is None or not valid or not row["is_active"]:
        async with store.unit_of_work(actor_id=None) as uow:
            await record_login_failure(uow, username=credentials.username, client_ip=client_ip)
        if for_token:
            raise AuthenticationFailed(INVALID_TOKEN_LOGIN)
        raise BadRequest(INVALID_LOGIN)
    async with store.unit_of_work(actor_id=row["id"]) as uow:
        values: dict[str, Any] = {"last_login": uow.now}
        if needs_rehash(row["password_hash"]):
            values["password_hash"] = hash_password(credentials.password)
        await uow.conn.execute(users.update().where(users.c.id == row["id"]).values(**values))
    user_id: int = row["id"]
    return user_id
