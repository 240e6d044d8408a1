"""Facilities: studios, control rooms, transmitters ... each at one location."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import sqlalchemy as sa
from databases.core import Connection
from pydantic import Field

from db.statements import DetailQuery
from db.tables import facilities, locations
from db.types import Row
from db.uow import UnitOfWork
from domain import time_off
from domain.actors import Actor, Role
from domain.errors import NotFound, ValidationFailed
from domain.limits import LongText
from domain.references import require_row
from domain.resource import ResourceRules
from domain.schemas import Schema, changed_fields, check_if_match, merge_for_update, validate

TOPIC = "facilities"
KINDS = ("studio", "control_room", "transmitter", "datacenter", "office", "other")
STATUSES = ("operational", "degraded", "offline", "maintenance")
REQUIRED_FIELDS = {"name", "location", "kind"}
UNIQUE_MESSAGE = "The fields location, name must make a unique set."

Kind = Literal["studio", "control_room", "transmitter", "datacenter", "office", "other"]
Status = Literal["operational", "degraded", "offline", "maintenance"]


class FacilityIn(Schema):
    name: str = Field(min_length=1, max_length=200)
    location: int
    kind: Kind
    status: Status = "operational"
    description: LongText = ""


def serialize(row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "location": row["location_id"],
        "kind": row["kind"],
        "status": row["status"],
        "description": row["description"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def list_query(actor: Actor | None = None) -> sa.Select[Any]:
    return sa.select(facilities)


# The detail read (GET, and before every write): built once, only the id changes.
_DETAIL = DetailQuery.of(sa.select(facilities), facilities.c.id)


async def get_facility(
    conn: Connection, actor: Actor | None, facility_id: int
) -> dict[str, Any] | None:
    row = await conn.fetch_one(_DETAIL.by_id(facility_id))
    return serialize(row) if row else None


async def _require(conn: Connection, facility_id: int) -> dict[str, Any]:
    found = await get_facility(conn, None, facility_id=facility_id)
    if found is None:
        raise NotFound()
    return found


async def _checked_values(
    conn: Connection, data: Mapping[str, Any], *, facility_id: int | None = None
) -> dict[str, Any]:
    """Validate input, its location reference and the (location, name) uniqueness."""
    values = validate(FacilityIn, data).model_dump()
    await require_row(conn, field="location", table=locations, value=values["location"])
    clash = sa.select(facilities.c.id).where(
        facilities.c.location_id == values["location"], facilities.c.name == values["name"]
    )
    if facility_id is not None:
        clash = clash.where(facilities.c.id != facility_id)
    if await conn.fetch_val(clash) is not None:
        raise ValidationFailed.on("non_field_errors", UNIQUE_MESSAGE)
    return values


def _columns(values: Mapping[str, Any]) -> dict[str, Any]:
    columns = dict(values)
    columns["location_id"] = columns.pop("location")
    return columns


async def create_facility(uow: UnitOfWork, actor: Actor, data: Mapping[str, Any]) -> dict[str, Any]:
    actor.require(Role.MANAGER)
    values = await _checked_values(uow.conn, data)
    facility_id = await uow.conn.execute(
        facilities.insert().values(**_columns(values), created_at=uow.now, updated_at=uow.now)
    )
    created = await _require(uow.conn, facility_id)
    uow.emit(TOPIC, "created", object_id=facility_id, data=created)
    return created


async def update_facility(
    uow: UnitOfWork,
    actor: Actor,
    facility_id: int,
    data: Mapping[str, Any],
    *,
    partial: bool,
    if_match: str | None = None,
) -> dict[str, Any]:
    actor.require(Role.MANAGER)
    current = await _require(uow.conn, facility_id)
    check_if_match(current, if_match)
    merged = merge_for_update(current, data, partial=partial, required=REQUIRED_FIELDS)
    values = await _checked_values(uow.conn, merged, facility_id=facility_id)
    changes = changed_fields(current, values)
    async with time_off.local_days_followed(
        uow, moving="location" in changes, facility_id=facility_id
    ):
        if changes:
            await uow.conn.execute(
                facilities.update()
                .where(facilities.c.id == facility_id)
                .values(**_columns(values), updated_at=uow.now)
            )
    updated = await _require(uow.conn, facility_id)
    if changes:
        await uow.record_history(TOPIC, facility_id, changes)
        uow.emit(TOPIC, "updated", object_id=facility_id, data=updated)
    return updated


async def delete_facility(
    uow: UnitOfWork, actor: Actor, facility_id: int, *, if_match: str | None = None
) -> None:
    """Delete a facility; one still referenced (shifts, tickets, events) is a 409."""
    actor.require(Role.ADMIN)
    current = await _require(uow.conn, facility_id)
    check_if_match(current, if_match)
    await uow.conn.execute(facilities.delete().where(facilities.c.id == facility_id))
    uow.emit(TOPIC, "deleted", object_id=facility_id, data={"id": facility_id})


# What api/ declares the REST resource from (domain/resource.py).
RULES = ResourceRules(
    serialize=serialize,
    list_query=list_query,
    get=get_facility,
    create=create_facility,
    update=update_facility,
    delete=delete_facility,
)
