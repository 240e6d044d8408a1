"""Service tickets: numbered SRV-…, planned work on facilities, assigned to a person."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any, Literal

import sqlalchemy as sa
from databases.core import Connection
from pydantic import Field

from db.statements import DetailQuery, row_columns
from db.tables import service_tickets
from db.types import Row
from db.uow import UnitOfWork
from domain.actors import Actor, Role
from domain.errors import NotFound, ValidationFailed
from domain.limits import LongText
from domain.resource import ResourceRules
from domain.schemas import Schema, check_if_match, merge_for_update, validate
from domain.tickets import (
    Priority,
    TicketKind,
    check_references,
    common_references,
    delete_ticket,
    insert_ticket,
    update_ticket,
)

TOPIC = "service-tickets"
COUNTER = "service_tickets"
NUMBER_PREFIX = "SRV"
REQUIRED_FIELDS = {"title", "category"}
STATUSES = ("new", "assigned", "in_progress", "on_hold", "completed", "cancelled")
CATEGORIES = ("maintenance", "repair", "installation", "request", "other")

Status = Literal["new", "assigned", "in_progress", "on_hold", "completed", "cancelled"]
Category = Literal["maintenance", "repair", "installation", "request", "other"]

# Open work moves freely; `completed` may only be reopened and `cancelled` is final.
MOVES: dict[str, frozenset[str]] = {
    "new": frozenset({"assigned", "in_progress", "on_hold", "completed", "cancelled"}),
    "assigned": frozenset({"new", "in_progress", "on_hold", "completed", "cancelled"}),
    "in_progress": frozenset({"assigned", "on_hold", "completed", "cancelled"}),
    "on_hold": frozenset({"assigned", "in_progress", "completed", "cancelled"}),
    "completed": frozenset({"in_progress"}),
    "cancelled": frozenset(),
}


class ServiceTicketIn(Schema):
    title: str = Field(min_length=1, max_length=200)
    description: LongText = ""
    category: Category
    facility: int | None = None
    priority: Priority = "medium"
    status: Status = "new"
    assigned_to: int | None = None
    due_date: date | None = None


def serialize(row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "number": row["number"],
        "title": row["title"],
        "description": row["description"],
        "category": row["category"],
        "facility": row["facility_id"],
        "priority": row["priority"],
        "status": row["status"],
        "requested_by": row["requested_by"],
        "assigned_to": row["assigned_to"],
        "due_date": row["due_date"],
        "completed_at": row["completed_at"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


# One query object, so api/listing.py builds each page shape once (`shared_query`).
EVERY_TICKET = sa.select(*row_columns(service_tickets))


def list_query(actor: Actor | None = None) -> sa.Select[Any]:
    """Every ticket: service tickets are visible to every role."""
    return EVERY_TICKET


# The detail read (GET, and before every write): built once, only the id changes.
_DETAIL = DetailQuery.of(EVERY_TICKET, service_tickets.c.id)


async def get_service_ticket(
    conn: Connection, actor: Actor | None, ticket_id: int
) -> dict[str, Any] | None:
    row = await conn.fetch_one(_DETAIL.by_id(ticket_id))
    return serialize(row) if row else None


async def require_service_ticket(conn: Connection, *, ticket_id: int) -> dict[str, Any]:
    """The ticket, or NotFound (also used by its comments and history)."""
    found = await get_service_ticket(conn, None, ticket_id=ticket_id)
    if found is None:
        raise NotFound()
    return found


KIND = TicketKind(
    topic=TOPIC,
    table=service_tickets,
    counter=COUNTER,
    number_prefix=NUMBER_PREFIX,
    renamed={"facility_id": "facility"},
    serialize=serialize,
)


def resolve_status(current: str, target: str, assignee: int | None) -> str:
    """Apply the assignment rule: an assignee takes a `new` ticket to `assigned`, and back."""
    if target == "new" and assignee is not None:
        return "assigned"
    if target == "assigned" and assignee is None:
        if current == "assigned":  # unassigned: back to the queue
            return "new"
        raise ValidationFailed.on("assigned_to", "Choose who the ticket is assigned to.")
    return target


def check_move(current: str, target: str) -> None:
    """Allow `current → target` or raise 400 on `status`."""
    if target != current and target not in MOVES[current]:
        raise ValidationFailed.on(
            "status", f'Cannot move a service ticket from "{current}" to "{target}".'
        )


def _columns(values: Mapping[str, Any]) -> dict[str, Any]:
    """Validated input → table columns."""
    return {
        "title": values["title"],
        "description": values["description"],
        "category": values["category"],
        "facility_id": values["facility"],
        "priority": values["priority"],
        "status": values["status"],
        "assigned_to": values["assigned_to"],
        "due_date": values["due_date"],
    }


async def create_service_ticket(
    uow: UnitOfWork, actor: Actor, data: Mapping[str, Any]
) -> dict[str, Any]:
    """Open a ticket requested by the actor: `new`, or `assigned` when it names an assignee."""
    actor.require(Role.OPERATOR)
    values = validate(ServiceTicketIn, {**data, "status": "new"}).model_dump()
    values["status"] = resolve_status("new", "new", values["assigned_to"])
    columns = {**_columns(values), "requested_by": actor.id}
    return await insert_ticket(uow, actor, KIND, columns, references=common_references(values))


async def update_service_ticket(
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
    current = await require_service_ticket(uow.conn, ticket_id=ticket_id)
    check_if_match(current, if_match)
    merged = merge_for_update(current, data, partial=partial, required=REQUIRED_FIELDS)
    values = validate(ServiceTicketIn, merged).model_dump()
    values["status"] = resolve_status(current["status"], values["status"], values["assigned_to"])
    check_move(current["status"], values["status"])
    await check_references(uow.conn, common_references(values), unchanged=current)
    columns = _columns(values)
    if values["status"] != current["status"]:
        columns["completed_at"] = uow.now if values["status"] == "completed" else None
    return await update_ticket(uow, actor, KIND, current, columns)


async def delete_service_ticket(
    uow: UnitOfWork, actor: Actor, ticket_id: int, *, if_match: str | None = None
) -> None:
    """Delete a ticket with its comments and history."""
    await delete_ticket(uow, actor, KIND, ticket_id, if_match=if_match)


# What api/ declares the REST resource from (domain/resource.py).
RULES = ResourceRules(
    serialize=serialize,
    list_query=list_query,
    get=get_service_ticket,
    create=create_service_ticket,
    update=update_service_ticket,
    delete=delete_service_ticket,
)
