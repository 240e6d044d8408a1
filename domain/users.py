"""Users and their profiles: the one representation used by REST, auth and events."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from databases.core import Connection

from db.statements import DetailQuery
from db.tables import profiles, users
from db.types import Row
from db.uow import UnitOfWork
from domain.actors import Actor, Role
from domain.errors import ValidationFailed
from domain.passwords import hash_password_off_loop, password_problems

TOPIC = "profiles"
MEDIA_PREFIX = "/media/"

PROFILE_COLUMNS = (
    profiles.c.id,
    profiles.c.user_id,
    users.c.username,
    users.c.email,
    users.c.first_name,
    users.c.last_name,
    users.c.role,
    users.c.is_active,
    profiles.c.title,
    profiles.c.department,
    profiles.c.phone,
    profiles.c.location_id,
    profiles.c.profile_image,
    profiles.c.email_notifications,
    profiles.c.created_at,
    profiles.c.updated_at,
)


def profile_query() -> sa.Select[Any]:
    """Profiles joined with their users: the rows `serialize_profile` reads."""
    return sa.select(*PROFILE_COLUMNS).select_from(
        profiles.join(users, users.c.id == profiles.c.user_id)
    )


def serialize_profile(row: Row) -> dict[str, Any]:
    full_name = f"{row['first_name']} {row['last_name']}".strip()
    image = row["profile_image"]
    return {
        "id": row["id"],
        "user": row["user_id"],
        "username": row["username"],
        "email": row["email"],
        "first_name": row["first_name"],
        "last_name": row["last_name"],
        "full_name": full_name,
        "role": row["role"],
        "is_active": row["is_active"],
        "title": row["title"],
        "department": row["department"],
        "phone": row["phone"],
        "location": row["location_id"],
        "profile_image": MEDIA_PREFIX + image if image else None,
        "email_notifications": row["email_notifications"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def current_user_object(profile: Mapping[str, Any]) -> dict[str, Any]:
    """The contract's current-user object, built from a serialized profile."""
    return {
        "id": profile["user"],
        "username": profile["username"],
        "email": profile["email"],
        "first_name": profile["first_name"],
        "last_name": profile["last_name"],
        "role": profile["role"],
        "is_active": profile["is_active"],
        "profile": dict(profile),
    }


# Detail reads by user id and by profile id: built once, only the id changes.
_BY_USER = DetailQuery.of(profile_query(), users.c.id)
_DETAIL = DetailQuery.of(profile_query(), profiles.c.id)


async def get_profile_by_user(conn: Connection, *, user_id: int) -> dict[str, Any] | None:
    row = await conn.fetch_one(_BY_USER.by_id(user_id))
    return serialize_profile(row) if row else None


async def get_profile(
    conn: Connection, actor: Actor | None, profile_id: int
) -> dict[str, Any] | None:
    row = await conn.fetch_one(_DETAIL.by_id(profile_id))
    return serialize_profile(row) if row else None


async def get_user_row(conn: Connection, *, username: str) -> Row | None:
    row = await conn.fetch_one(sa.select(users).where(users.c.username == username))
    return row if row else None


async def active_actor(
    conn: Connection, *, user_id: int, via: str, credential_id: str
) -> Actor | None:
    """The Actor for an active user, or None when deactivated or gone."""
    row = await conn.fetch_one(
        sa.select(users.c.id, users.c.username, users.c.role, users.c.is_active).where(
            users.c.id == user_id
        )
    )
    if row is None or not row["is_active"]:
        return None
    return Actor(row["id"], row["username"], Role(row["role"]), via, credential_id)


USERNAME_TAKEN = "A user with that username already exists."


async def check_username_free(
    conn: Connection, *, username: str, user_id: int | None = None
) -> None:
    """400 on `username` when another user has it: one message for the API and the CLI."""
    clash = sa.select(users.c.id).where(users.c.username == username)
    if user_id is not None:
        clash = clash.where(users.c.id != user_id)
    if await conn.fetch_val(clash) is not None:
        raise ValidationFailed.on("username", USERNAME_TAKEN)


async def create_user(
    uow: UnitOfWork,
    *,
    username: str,
    password: str,
    role: Role | str,
    email: str = "",
    first_name: str = "",
    last_name: str = "",
    title: str = "",
    department: str = "",
    phone: str = "",
    location_id: int | None = None,
) -> dict[str, Any]:
    """Create a user with its profile (password policy enforced) and return the profile."""
    await check_username_free(uow.conn, username=username)
    problems = password_problems(password, username=username)
    if problems:
        raise ValidationFailed({"password": problems})
    role = Role(role)
    user_id = await uow.conn.execute(
        users.insert().values(
            username=username,
            email=email,
            first_name=first_name,
            last_name=last_name,
            password_hash=await hash_password_off_loop(password),
            role=role.value,
            is_active=True,
            credentials_changed_at=uow.now,
            created_at=uow.now,
            updated_at=uow.now,
        )
    )
    profile_id = await uow.conn.execute(
        profiles.insert().values(
            user_id=user_id,
            title=title,
            department=department,
            phone=phone,
            location_id=location_id,
            created_at=uow.now,
            updated_at=uow.now,
        )
    )
    profile = await get_profile(uow.conn, None, profile_id=profile_id)
    assert profile is not None
    uow.emit(TOPIC, "created", object_id=profile_id, data=profile)
    return profile
