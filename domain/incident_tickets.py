"""Incident tickets: numbered INC-…, moved through a status machine with server-set stamps."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from databases.core import Connection
from pydantic import AwareDatetime, Field

from db.statements import bound, row_columns
from db.tables import incident_tickets, incident_types
from db.types import Row
from db.uow import UnitOfWork
from domain.actors import Actor, Role
from domain.errors import NotFound, PermissionDenied, ValidationFailed
from domain.limits import LongText
from domain.notifications import manager_ids, notify_many
from domain.references import References
from domain.resource import ResourceRules
from domain.schemas import Schema, check_if_match, merge_for_update, validate
from domain.shifts import on_shift_user_ids
from domain.tickets import (
    Priority,
    TicketKind,
    check_references,
    common_references,
    delete_ticket,
    insert_ticket,
    update_ticket,
)

TOPIC = "incident-tickets"
COUNTER = "incident_tickets"
NUMBER_PREFIX = "INC"
REQUIRED_FIELDS = {"title", "incident_type"}
STATUSES = ("open", "acknowledged", "in_progress", "resolved", "closed")

Status = Literal["open", "acknowledged", "in_progress", "resolved", "closed"]

# Moves any writer may make; a manager may also close from any status.
MOVES: dict[str, frozenset[str]] = {
    "open": frozenset({"acknowledged"}),
    "acknowledged": frozenset({"in_progress"}),
    "in_progress": frozenset({"resolved"}),
    "resolved": frozenset({"closed", "in_progress"}),
    "closed": frozenset(),
}
# The stamp each status sets when a ticket enters it.
STAMPS = {"acknowledged": "acknowledged_at", "resolved": "resolved_at", "closed": "closed_at"}


class IncidentTicketIn(Schema):
    title: str = Field(min_length=1, max_length=200)
    description: LongText = ""
    incident_type: int
    facility: int | None = None
    priority: Priority | None = None
    status: Status = "open"
    on_air_impact: bool = False
    assigned_to: int | None = None
    occurred_at: AwareDatetime | None = None
    resolution: LongText = ""


def serialize(row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "number": row["number"],
        "title": row["title"],
        "description": row["description"],
        "incident_type": row["incident_type_id"],
        "facility": row["facility_id"],
        "priority": row["priority"],
        "status": row["status"],
        "on_air_impact": row["on_air_impact"],
        "reported_by": row["reported_by"],
        "assigned_to": row["assigned_to"],
        "occurred_at": row["occurred_at"],
        "acknowledged_at": row["acknowledged_at"],
        "resolved_at": row["resolved_at"],
        "closed_at": row["closed_at"],
        "resolution": row["resolution"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


# Every role sees every ticket: one query object, so api/listing.py builds each page
# shape once (`shared_query`).
EVERY_TICKET = sa.select(*row_columns(incident_tickets))


def list_query(actor: Actor | None = None) -> sa.Select[Any]:
    """Every ticket: incident tickets are visible to every role."""
    return EVERY_TICKET


# The detail read (GET, and before every write): built once, only the id changes.
_BY_ID = sa.select(*row_columns(incident_tickets)).where(
    incident_tickets.c.id == sa.bindparam("ticket_id")
)


async def get_incident_ticket(
    conn: Connection, actor: Actor | None, ticket_id: int
) -> dict[str, Any] | None:
    row = await conn.fetch_one(bound(_BY_ID, ticket_id=ticket_id))
    return serialize(row) if row else None


async def require_incident_ticket(conn: Connection, *, ticket_id: int) -> dict[str, Any]:
    """The ticket, or NotFound (also used by its comments and history)."""
    found = await get_incident_ticket(conn, None, ticket_id=ticket_id)
    if found is None:
        raise NotFound()
    return found


KIND = TicketKind(
    topic=TOPIC,
    table=incident_tickets,
    counter=COUNTER,
    number_prefix=NUMBER_PREFIX,
    renamed={"incident_type_id": "incident_type", "facility_id": "facility"},
    serialize=serialize,
)


def check_move(actor: Actor, current: str, target: str) -> None:
    """Allow `current → target` or raise: 400 on `status` if no one may, 403 if only a manager."""
    if target == current or target in MOVES[current]:
        return
    if target == "closed":
        if not actor.is_manager:
            raise PermissionDenied()
        return
    raise ValidationFailed.on(
        "status", f'Cannot move an incident ticket from "{current}" to "{target}".'
    )


def _stamps(current: str, target: str, now: datetime) -> dict[str, Any]:
    """Stamp the status entered; reopening clears the resolution time it had."""
    if target == current:
        return {}
    stamps: dict[str, Any] = {}
    if target in STAMPS:
        stamps[STAMPS[target]] = now
    if current == "resolved" and target == "in_progress":
        stamps["resolved_at"] = None
    return stamps


def _require_resolution(values: Mapping[str, Any], *, entering: bool) -> None:
    if entering and not values["resolution"].strip():
        raise ValidationFailed.on("resolution", "A resolution is required to resolve a ticket.")


async def _type_default_priority(conn: Connection, type_id: int) -> str:
    priority: str = await conn.fetch_val(
        sa.select(incident_types.c.default_priority).where(incident_types.c.id == type_id)
    )
    return priority


def _references(values: Mapping[str, Any]) -> References:
    return {"incident_type": (incident_types, values["incident_type"]), **common_references(values)}


def _columns(values: Mapping[str, Any]) -> dict[str, Any]:
    """Validated input → table columns."""
    return {
        "title": values["title"],
        "description": values["description"],
        "incident_type_id": values["incident_type"],
        "facility_id": values["facility"],
        "priority": values["priority"],
        "status": values["status"],
        "on_air_impact": values["on_air_impact"],
        "assigned_to": values["assigned_to"],
        "occurred_at": values["occurred_at"],
        "resolution": values["resolution"],
    }


async def create_incident_ticket(
    uow: UnitOfWork, actor: Actor, data: Mapping[str, Any]
) -> dict[str, Any]:
    """Open a ticket reported by the actor; status always starts at `open`."""
    actor.require(Role.OPERATOR)
    values = validate(IncidentTicketIn, {**data, "status": "open"}).model_dump()
    if values["priority"] is None:  # None for a type that does not exist: 400 below
        values["priority"] = await _type_default_priority(uow.conn, values["incident_type"])
    if values["occurred_at"] is None:
        values["occurred_at"] = uow.now
    columns = {**_columns(values), "reported_by": actor.id}
    return await insert_ticket(uow, actor, KIND, columns, references=_references(values))


async def update_incident_ticket(
    uow: UnitOfWork,
    actor: Actor,
    ticket_id: int,
    data: Mapping[str, Any],
    *,
    partial: bool,
    if_match: str | None = None,
) -> dict[str, Any]:
    """Edit fields and/or move `status`; every changed field is written to history."""
    actor.require(Role.OPERATOR)
    current = await require_incident_ticket(uow.conn, ticket_id=ticket_id)
    check_if_match(current, if_match)
    merged = merge_for_update(current, data, partial=partial, required=REQUIRED_FIELDS)
    values = validate(IncidentTicketIn, merged).model_dump()
    nulls = [name for name in ("priority", "occurred_at") if values[name] is None]
    if nulls:  # defaults apply on create only
        raise ValidationFailed({name: ["This field may not be null."] for name in nulls})
    check_move(actor, current["status"], values["status"])
    entering_resolved = values["status"] == "resolved" != current["status"]
    _require_resolution(values, entering=entering_resolved)
    await check_references(uow.conn, _references(values), unchanged=current)
    columns = {**_columns(values), **_stamps(current["status"], values["status"], uow.now)}
    return await update_ticket(uow, actor, KIND, current, columns)


async def delete_incident_ticket(
    uow: UnitOfWork, actor: Actor, ticket_id: int, *, if_match: str | None = None
) -> None:
    """Delete a ticket with its comments and history."""
    await delete_ticket(uow, actor, KIND, ticket_id, if_match=if_match)


# -- escalation: urgent incidents left open ----------------------------------------------------


def _escalation_due(cutoff: datetime) -> sa.ColumnElement[bool]:
    """Open, never escalated, urgent (on air or critical), and created before the cut-off."""
    t = incident_tickets
    return sa.and_(
        t.c.status == "open",
        t.c.escalated_at.is_(None),
        sa.or_(t.c.on_air_impact, t.c.priority == "critical"),
        t.c.created_at <= cutoff,
    )


async def incidents_to_escalate(conn: Connection, *, now: datetime, after_secs: int) -> list[int]:
    """Ids of the incidents due for escalation `after_secs` after they were opened."""
    cutoff = now - timedelta(seconds=after_secs)
    query = sa.select(incident_tickets.c.id).where(_escalation_due(cutoff))
    return [row[0] for row in await conn.fetch_all(query.order_by(incident_tickets.c.id))]


async def escalate_incident(uow: UnitOfWork, *, ticket_id: int, after_secs: int) -> bool:
    """Claim the incident (escalated_at → now) and tell every manager and whoever is on
    shift at its facility; False when it is no longer due (another run claimed it)."""
    t = incident_tickets
    cutoff = uow.now - timedelta(seconds=after_secs)
    ticket = await uow.conn.fetch_one(
        t.update()
        .where(t.c.id == ticket_id, _escalation_due(cutoff))
        .values(escalated_at=uow.now)
        .returning(t.c.id, t.c.number, t.c.title, t.c.facility_id, t.c.priority)
    )
    if ticket is None:
        return False
    recipients = await manager_ids(uow.conn)
    if ticket["facility_id"] is not None:
        recipients |= await on_shift_user_ids(
            uow.conn, facility_id=ticket["facility_id"], at=uow.now
        )
    await notify_many(
        uow,
        user_ids=recipients,
        kind="incident_escalated",
        title=f"Escalated: {ticket['number']} {ticket['title']}",
        body=f"Incident {ticket['number']} ({ticket['priority']}) is still open.",
        link=f"/api/incident-tickets/{ticket_id}/",
    )
    return True


# What api/ declares the REST resource from (domain/resource.py).
RULES = ResourceRules(
    serialize=serialize,
    list_query=list_query,
    get=get_incident_ticket,
    create=create_incident_ticket,
    update=update_incident_ticket,
    delete=delete_incident_ticket,
)
