"""Incident types: the kinds of incident, each with the priority new tickets start at."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from databases.core import Connection
from pydantic import Field, field_validator

from db.statements import DetailQuery
from db.tables import incident_types
from db.types import Row
from db.uow import UnitOfWork
from domain.actors import Actor, Role
from domain.errors import NotFound
from domain.limits import LongText
from domain.resource import ResourceRules
from domain.schemas import Schema, changed_fields, check_if_match, merge_for_update, validate
from domain.tickets import Priority

TOPIC = "incident-types"
REQUIRED_FIELDS = {"name"}

_COLOR = re.compile(r"#[0-9a-fA-F]{6}")


class IncidentTypeIn(Schema):
    name: str = Field(min_length=1, max_length=100)
    description: LongText = ""
    default_priority: Priority = "medium"
    color: str = "#808080"

    @field_validator("color")
    @classmethod
    def _hex_color(cls, value: str) -> str:
        if not _COLOR.fullmatch(value):
            raise ValueError('Enter a color as "#rrggbb" (e.g. "#ff8800").')
        return value.lower()  # one spelling, so ETags and filters agree


def serialize(row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "description": row["description"],
        "default_priority": row["default_priority"],
        "color": row["color"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def list_query(actor: Actor | None = None) -> sa.Select[Any]:
    return sa.select(incident_types)


# The detail read (GET, and before every write): built once, only the id changes.
_DETAIL = DetailQuery.of(sa.select(incident_types), incident_types.c.id)


async def get_incident_type(
    conn: Connection, actor: Actor | None, type_id: int
) -> dict[str, Any] | None:
    row = await conn.fetch_one(_DETAIL.by_id(type_id))
    return serialize(row) if row else None


async def _require(conn: Connection, type_id: int) -> dict[str, Any]:
    found = await get_incident_type(conn, None, type_id=type_id)
    if found is None:
        raise NotFound()
    return found


def _validated(data: Mapping[str, Any]) -> dict[str, Any]:
    return validate(IncidentTypeIn, data).model_dump()


async def create_incident_type(
    uow: UnitOfWork, actor: Actor, data: Mapping[str, Any]
) -> dict[str, Any]:
    actor.require(Role.MANAGER)
    values = _validated(data)
    type_id = await uow.conn.execute(
        incident_types.insert().values(**values, created_at=uow.now, updated_at=uow.now)
    )
    created = await _require(uow.conn, type_id)
    uow.emit(TOPIC, "created", object_id=type_id, data=created)
    return created


async def update_incident_type(
    uow: UnitOfWork,
    actor: Actor,
    type_id: int,
    data: Mapping[str, Any],
    *,
    partial: bool,
    if_match: str | None = None,
) -> dict[str, Any]:
    actor.require(Role.MANAGER)
    current = await _require(uow.conn, type_id)
    check_if_match(current, if_match)
    merged = merge_for_update(current, data, partial=partial, required=REQUIRED_FIELDS)
    values = _validated(merged)
    changes = changed_fields(current, values)
    if changes:
        await uow.conn.execute(
            incident_types.update()
            .where(incident_types.c.id == type_id)
            .values(**values, updated_at=uow.now)
        )
    updated = await _require(uow.conn, type_id)
    if changes:
        await uow.record_history(TOPIC, type_id, changes)
        uow.emit(TOPIC, "updated", object_id=type_id, data=updated)
    return updated


async def delete_incident_type(
    uow: UnitOfWork, actor: Actor, type_id: int, *, if_match: str | None = None
) -> None:
    """Delete a type; one still used by tickets is a 409 (the foreign key refuses)."""
    actor.require(Role.ADMIN)
    current = await _require(uow.conn, type_id)
    check_if_match(current, if_match)
    await uow.conn.execute(incident_types.delete().where(incident_types.c.id == type_id))
    uow.emit(TOPIC, "deleted", object_id=type_id, data={"id": type_id})


# What api/ declares the REST resource from (domain/resource.py).
RULES = ResourceRules(
    serialize=serialize,
    list_query=list_query,
    get=get_incident_type,
    create=create_incident_type,
    update=update_incident_type,
    delete=delete_incident_type,
)
