"""Profiles: who may change which fields of a user, passwords, deactivation."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from databases.core import Connection
from pydantic import Field, field_validator

from db.store import Store
from db.tables import locations, profiles, users
from db.types import Row
from db.uow import UnitOfWork
from domain import calendar_feeds, scheduled_events, sessions, time_entries, time_off, tokens
from domain.actors import Actor, Role
from domain.auth import check_password
from domain.emails import is_valid_address
from domain.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from domain.limits import SECRET, Secret
from domain.passwords import hash_password_off_loop, password_problems
from domain.references import require_row
from domain.resource import ResourceRules
from domain.schemas import Schema, changed_fields, check_if_match, merge_for_update, validate
from domain.throttle import LoginLimits
from domain.users import (
    TOPIC,
    check_username_free,
    create_user,
    get_profile,
    profile_query,
    serialize_profile,
)

# What a user may change on their own profile; everything else needs an admin.
CONTACT_FIELDS = frozenset(
    {
        "email",
        "first_name",
        "last_name",
        "title",
        "department",
        "phone",
        "location",
        "email_notifications",
    }
)
ADMIN_FIELDS = frozenset({"username", "role", "is_active"})
# pg_advisory_xact_lock(key): changes that could remove the last active admin, one at a time.
ADMINS_LOCK_KEY = 0x42414447  # "BADG"
LAST_ADMIN = "At least one active admin must remain."
EDITABLE_FIELDS = CONTACT_FIELDS | ADMIN_FIELDS
USER_COLUMNS = ("username", "email", "first_name", "last_name", "role", "is_active")
PROFILE_COLUMNS = ("title", "department", "phone", "location", "email_notifications")
REQUIRED_FIELDS = {"username"}
ROLES = tuple(role.value for role in Role)
# History shows that a password changed, never a hash of it.
PASSWORD_HISTORY = ["********", "********"]
WRONG_CURRENT_PASSWORD = "The current password is incorrect."  # noqa: S105

_USERNAME = re.compile(r"[\w.@+-]+\Z")


class ProfileIn(Schema):
    username: str = Field(min_length=1, max_length=150)
    email: str = Field(default="", max_length=254)
    first_name: str = Field(default="", max_length=150)
    last_name: str = Field(default="", max_length=150)
    role: Literal["admin", "manager", "operator", "viewer"] = "viewer"
    is_active: bool = True
    title: str = Field(default="", max_length=200)
    department: str = Field(default="", max_length=200)
    phone: str = Field(default="", max_length=50)
    location: int | None = None
    email_notifications: bool = True

    @field_validator("username")
    @classmethod
    def _username_chars(cls, value: str) -> str:
        if not _USERNAME.match(value):
            raise ValueError(
                "Enter a valid username. This value may contain only letters, "
                "numbers, and @/./+/-/_ characters."
            )
        return value

    @field_validator("email")
    @classmethod
    def _email_address(cls, value: str) -> str:
        if value and not is_valid_address(value):
            raise ValueError("Enter a valid email address.")
        return value


class ProfileCreate(ProfileIn):
    password: Secret = Field(max_length=128)


class PasswordChange(Schema):
    password: Secret = Field(min_length=1, max_length=128)
    current_password: Annotated[str | None, SECRET] = Field(default=None, max_length=128)


def serialize(row: Row) -> dict[str, Any]:
    return serialize_profile(row)


def list_query(actor: Actor | None = None) -> sa.Select[Any]:
    return profile_query()


async def _require(conn: Connection, profile_id: int) -> dict[str, Any]:
    found = await get_profile(conn, None, profile_id=profile_id)
    if found is None:
        raise NotFound()
    return found


async def _check_references(
    conn: Connection, values: Mapping[str, Any], *, user_id: int | None = None
) -> None:
    """400 for an unknown location or a username another user already has."""
    await require_row(conn, field="location", table=locations, value=values["location"])
    await check_username_free(conn, username=values["username"], user_id=user_id)


async def create_profile(uow: UnitOfWork, actor: Actor, data: Mapping[str, Any]) -> dict[str, Any]:
    """Create a user and its profile (admins only)."""
    actor.require(Role.ADMIN)
    values = validate(ProfileCreate, data).model_dump()
    await _check_references(uow.conn, values)
    created = await create_user(
        uow,
        username=values["username"],
        password=values["password"],
        role=values["role"],
        email=values["email"],
        first_name=values["first_name"],
        last_name=values["last_name"],
        title=values["title"],
        department=values["department"],
        phone=values["phone"],
        location_id=values["location"],
    )
    # create_user makes active users with notifications on; apply the other choices.
    extra = {
        name: values[name]
        for name in ("is_active", "email_notifications")
        if values[name] != created[name]
    }
    if not extra:
        return created
    await _write(uow, user_id=created["user"], profile_id=created["id"], values=extra)
    updated = await _require(uow.conn, created["id"])
    uow.emit(TOPIC, "updated", object_id=created["id"], data=updated)
    return updated


def _editable(profile: Mapping[str, Any]) -> dict[str, Any]:
    return {name: profile[name] for name in EDITABLE_FIELDS}


def _check_allowed(actor: Actor, *, is_self: bool, changes: Mapping[str, Any]) -> None:
    """Admins change anything; others only their own contact fields (viewers: nothing)."""
    if actor.is_admin:
        return
    if not is_self:
        raise PermissionDenied()
    if changes.keys() & ADMIN_FIELDS:
        raise PermissionDenied()
    if changes and not actor.role.at_least(Role.OPERATOR):
        raise PermissionDenied()


async def verify_current_password(
    store: Store,
    actor: Actor,
    *,
    profile_id: int,
    data: Mapping[str, Any],
    client_ip: str,
    limits: LoginLimits,
) -> bool:
    """Check a password change's `current_password` before its transaction opens.

    The check counts against the login limits (it is a password guess like any other) and
    runs off the event loop; `update_profile` then trusts the answer. False when there is
    nothing to check (or no right to: the update refuses that itself).
    """
    if "password" not in data or data.get("current_password") is None:
        return False
    change = validate(PasswordChange, data)
    async with store.connection() as conn:
        row = await conn.fetch_one(
            sa.select(users.c.id, users.c.username, users.c.password_hash)
            .select_from(profiles.join(users, users.c.id == profiles.c.user_id))
            .where(profiles.c.id == profile_id)
        )
    if row is None or not (actor.is_admin or row["id"] == actor.id):
        return False
    valid = await check_password(
        store,
        username=row["username"],
        password_hash=row["password_hash"],
        password=change.current_password or "",
        client_ip=client_ip,
        limits=limits,
    )
    if not valid:
        raise ValidationFailed.on("current_password", WRONG_CURRENT_PASSWORD)
    return True


def _new_password(
    actor: Actor, *, username: str, data: Mapping[str, Any], current_password_verified: bool
) -> str | None:
    """The validated new password, if one was sent; non-admins must prove the current one."""
    if "password" not in data:
        return None
    change = validate(PasswordChange, data)
    if change.current_password is None and not actor.is_admin:
        raise ValidationFailed.on("current_password", "This field is required.")
    if change.current_password is not None and not current_password_verified:
        raise ValidationFailed.on("current_password", WRONG_CURRENT_PASSWORD)
    problems = password_problems(change.password, username=username)
    if problems:
        raise ValidationFailed({"password": problems})
    return change.password


async def _write(
    uow: UnitOfWork, *, user_id: int, profile_id: int, values: Mapping[str, Any]
) -> None:
    user_values = {name: values[name] for name in USER_COLUMNS if name in values}
    profile_values = {name: values[name] for name in PROFILE_COLUMNS if name in values}
    if "location" in profile_values:
        profile_values["location_id"] = profile_values.pop("location")
    await uow.conn.execute(
        users.update().where(users.c.id == user_id).values(**user_values, updated_at=uow.now)
    )
    await uow.conn.execute(
        profiles.update()
        .where(profiles.c.id == profile_id)
        .values(**profile_values, updated_at=uow.now)
    )


async def keep_an_admin(uow: UnitOfWork, *, user_id: int) -> bool:
    """Whether an active admin other than `user_id` remains (checked by one writer at a time).

    Demoting, deactivating or deleting the last active admin would leave no one able to
    manage users, short of editing the database by hand.
    """
    if uow.store.is_postgres:
        await uow.conn.execute(sa.select(sa.func.pg_advisory_xact_lock(ADMINS_LOCK_KEY)))
    other = await uow.conn.fetch_val(
        sa.select(users.c.id)
        .where(users.c.role == Role.ADMIN.value, users.c.is_active, users.c.id != user_id)
        .limit(1)
    )
    return other is not None


def _is_active_admin(profile: Mapping[str, Any]) -> bool:
    return profile["role"] == Role.ADMIN.value and bool(profile["is_active"])


def _stops_being_admin(current: Mapping[str, Any], values: Mapping[str, Any]) -> str | None:
    """The field by which an active admin stops being one, if any."""
    if not _is_active_admin(current):
        return None
    if values["role"] != Role.ADMIN.value:
        return "role"
    return None if values["is_active"] else "is_active"


async def end_credentials(
    uow: UnitOfWork, *, user_id: int, keep_session_key_hash: str | None = None
) -> None:
    """End a user's sessions (but the one kept), tokens and calendar feed URLs."""
    await sessions.end_user_sessions(
        uow, user_id=user_id, keep_session_key_hash=keep_session_key_hash
    )
    await tokens.revoke_user_tokens(uow, user_id=user_id)
    await calendar_feeds.revoke_user_feeds(uow, user_id=user_id)


async def update_profile(
    uow: UnitOfWork,
    actor: Actor,
    profile_id: int,
    data: Mapping[str, Any],
    *,
    partial: bool,
    if_match: str | None = None,
    current_password_verified: bool = False,
) -> dict[str, Any]:
    """Apply a PATCH/PUT, including password changes and (de)activation.

    A `current_password` must have passed `verify_current_password` first.
    """
    current = await _require(uow.conn, profile_id)
    user_id = current["user"]
    is_self = user_id == actor.id
    if not (actor.is_admin or is_self):
        raise PermissionDenied()
    check_if_match(current, if_match)
    before = _editable(current)
    sent = {name: value for name, value in data.items() if name in EDITABLE_FIELDS}
    merged = merge_for_update(before, sent, partial=partial, required=REQUIRED_FIELDS)
    values = validate(ProfileIn, merged).model_dump()
    changes = changed_fields(before, values)
    _check_allowed(actor, is_self=is_self, changes=changes)
    await _check_references(uow.conn, values, user_id=user_id)
    field = _stops_being_admin(current, values)
    if field is not None and not await keep_an_admin(uow, user_id=user_id):
        raise ValidationFailed.on(field, LAST_ADMIN)
    password = _new_password(
        actor,
        username=values["username"],
        data=data,
        current_password_verified=current_password_verified,
    )
    if not changes and password is None:
        return current
    await _write(uow, user_id=user_id, profile_id=profile_id, values=values)
    if password is not None:
        password_hash = await hash_password_off_loop(password)
        await uow.conn.execute(
            users.update().where(users.c.id == user_id).values(password_hash=password_hash)
        )
        changes["password"] = PASSWORD_HISTORY
        keep = actor.credential_id if is_self and actor.via == "session" else None
        await end_credentials(uow, user_id=user_id, keep_session_key_hash=keep)
    if changes.get("is_active") == [True, False]:
        await end_credentials(uow, user_id=user_id)
    elif "role" in changes:  # open sockets re-authenticate and see what the new role may
        uow.revoke(user_id)
    updated = await _require(uow.conn, profile_id)
    await uow.record_history(TOPIC, profile_id, changes)
    uow.emit(TOPIC, "updated", object_id=profile_id, data=updated)
    return updated


async def delete_profile(
    uow: UnitOfWork, actor: Actor, profile_id: int, *, if_match: str | None = None
) -> dict[str, Any]:
    """Delete a user and its profile (admins), returning it; one still referenced is a 409:
    deactivate it instead."""
    actor.require(Role.ADMIN)
    current = await _require(uow.conn, profile_id)
    check_if_match(current, if_match)
    if _is_active_admin(current) and not await keep_an_admin(uow, user_id=current["user"]):
        raise Conflict(LAST_ADMIN)
    # What the database would change silently with the user (ON DELETE SET NULL, CASCADE),
    # changed first as changes of those rows: their sockets and cached totals hear of it.
    await time_entries.detach_from(uow, users, current["user"])
    await time_off.forget_reviewer(uow, current["user"])
    await scheduled_events.forget_user(uow, current["user"])
    await uow.conn.execute(users.delete().where(users.c.id == current["user"]))
    uow.revoke(current["user"])  # their sessions, tokens and keys went with the row
    uow.emit(TOPIC, "deleted", object_id=profile_id, data={"id": profile_id})
    return current


# What api/ declares the REST resource from (domain/resource.py).
RULES = ResourceRules(
    serialize=serialize,
    list_query=list_query,
    get=get_profile,
    create=create_profile,
    update=update_profile,
    delete=delete_profile,
)
