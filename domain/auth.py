"""Signing in: credentials checked against throttling, the user marked as logged in."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from pydantic import Field

from db.store import Store
from db.tables import users
from db.uow import UnitOfWork
from domain.errors import AuthenticationFailed, BadRequest
from domain.limits import Secret
from domain.passwords import hash_password_off_loop, needs_rehash, verify_password_off_loop
from domain.schemas import Schema, validate
from domain.throttle import LoginLimits, check_login_allowed, release_attempt, reserve_attempt
from domain.users import get_user_row

INVALID_LOGIN = "Invalid username or password."
INVALID_TOKEN_LOGIN = "No active account found with the given credentials"  # noqa: S105


class Credentials(Schema):
    username: str = Field(min_length=1, max_length=150)
    password: Secret = Field(min_length=1, max_length=1024)


async def check_password(
    store: Store,
    *,
    username: str,
    password_hash: str | None,
    password: str,
    client_ip: str,
    limits: LoginLimits,
    on_success: Callable[[UnitOfWork], Awaitable[None]] | None = None,
) -> bool:
    """Check a password under the login limits: the attempt is counted before the check.

    On success the reservation is dropped in one transaction with `on_success` (one write,
    not two: on SQLite every write transaction queues for the one write lock).
    """
    attempt_id = await reserve_attempt(store, username=username, client_ip=client_ip, limits=limits)
    valid = await verify_password_off_loop(password_hash, password)
    if valid:
        async with store.unit_of_work(actor_id=None) as uow:
            await release_attempt(uow, attempt_id=attempt_id)
            if on_success is not None:
                await on_success(uow)
    return valid


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
        # A flood is mostly refused: answer 429 on the connection the user row is read on.
        await check_login_allowed(
            conn,
            username=credentials.username.casefold(),
            client_ip=client_ip,
            now=store.clock(),
            limits=limits,
        )
        row = await get_user_row(conn, username=credentials.username)

    async def signed_in(uow: UnitOfWork) -> None:
        assert row is not None  # a password only verifies against a real user's hash
        await uow.conn.execute(
            users.update().where(users.c.id == row["id"]).values(last_login=uow.now)
        )

    valid = await check_password(  # hashes even without a user, so timing does not tell
        store,
        username=credentials.username,
        password_hash=row["password_hash"] if row and row["is_active"] else None,
        password=credentials.password,
        client_ip=client_ip,
        limits=limits,
        on_success=signed_in,
    )
    if row is None or not valid:
        if for_token:
            raise AuthenticationFailed(INVALID_TOKEN_LOGIN)
        raise BadRequest(INVALID_LOGIN)
    if needs_rehash(row["password_hash"]):  # argon2 parameters were raised since
        new_hash = await hash_password_off_loop(credentials.password)
        async with store.unit_of_work(actor_id=row["id"]) as uow:
            await uow.conn.execute(
                users.update().where(users.c.id == row["id"]).values(password_hash=new_hash)
            )
    user_id: int = row["id"]
    return user_id
