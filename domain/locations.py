"""Locations: sites of the broadcaster, each with its IANA time zone."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import sqlalchemy as sa
from databases.core import Connection
from pydantic import Field, field_validator

from db.statements import DetailQuery
from db.tables import locations
from db.types import Row
from db.uow import UnitOfWork
from domain import time_off
from domain.actors import Actor, Role
from domain.errors import NotFound
from domain.limits import LongText
from domain.resource import ResourceRules
from domain.schemas import Schema, changed_fields, check_if_match, merge_for_update, validate

TOPIC = "locations"
REQUIRED_FIELDS = {"name", "code", "timezone"}


@cache
def _zone_names() -> frozenset[str]:
    """The IANA names (reading them costs milliseconds, so once per process)."""
    return frozenset(available_timezones())


def is_valid_timezone(name: str) -> bool:
    if name not in _zone_names():
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


class LocationIn(Schema):
    name: str = Field(min_length=1, max_length=200)
    code: str = Field(min_length=1, max_length=16)
    address: LongText = ""
    timezone: str = Field(min_length=1, max_length=64)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if not is_valid_timezone(value):
            raise ValueError(f'"{value}" is not a valid IANA time zone (e.g. "Europe/London").')
        return value


def serialize(row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "code": row["code"],
        "address": row["address"],
        "timezone": row["timezone"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def list_query(actor: Actor | None = None) -> sa.Select[Any]:
    return sa.select(locations)


# The detail read (GET, and before every write): built once, only the id changes.
_DETAIL = DetailQuery.of(sa.select(locations), locations.c.id)


async def get_location(
    conn: Connection, actor: Actor | None, location_id: int
) -> dict[str, Any] | None:
    row = await conn.fetch_one(_DETAIL.by_id(location_id))
    return serialize(row) if row else None


async def _require(conn: Connection, location_id: int) -> dict[str, Any]:
    found = await get_location(conn, None, location_id=location_id)
    if found is None:
        raise NotFound()
    return found


async def create_location(uow: UnitOfWork, actor: Actor, data: Mapping[str, Any]) -> dict[str, Any]:
    actor.require(Role.MANAGER)
    values = validate(LocationIn, data).model_dump()
    location_id = await uow.conn.execute(
        locations.insert().values(**values, created_at=uow.now, updated_at=uow.now)
    )
    created = await _require(uow.conn, location_id)
    uow.emit(TOPIC, "created", object_id=location_id, data=created)
    return created


async def update_location(
    uow: UnitOfWork,
    actor: Actor,
    location_id: int,
    data: Mapping[str, Any],
    *,
    partial: bool,
    if_match: str | None = None,
) -> dict[str, Any]:
    actor.require(Role.MANAGER)
    current = await _require(uow.conn, location_id)
    check_if_match(current, if_match)
    merged = merge_for_update(current, data, partial=partial, required=REQUIRED_FIELDS)
    values = validate(LocationIn, merged).model_dump()
    changes = changed_fields(current, values)
    async with time_off.local_days_followed(
        uow, moving="timezone" in changes, location_id=location_id
    ):
        if changes:
            await uow.conn.execute(
                locations.update()
                .where(locations.c.id == location_id)
                .values(**values, updated_at=uow.now)
            )
    updated = await _require(uow.conn, location_id)
    if changes:
        await uow.record_history(TOPIC, location_id, changes)
        uow.emit(TOPIC, "updated", object_id=location_id, data=updated)
    return updated


async def delete_location(
    uow: UnitOfWork, actor: Actor, location_id: int, *, if_match: str | None = None
) -> None:
    actor.require(Role.ADMIN)
    current = await _require(uow.conn, location_id)
    check_if_match(current, if_match)
    await uow.conn.execute(locations.delete().where(locations.c.id == location_id))
    uow.emit(TOPIC, "deleted", object_id=location_id, data={"id": location_id})


# What api/ declares the REST resource from (domain/resource.py).
RULES = ResourceRules(
    serialize=serialize,
    list_query=list_query,
    get=get_location,
    create=create_location,
    update=update_location,
    delete=delete_location,
)
