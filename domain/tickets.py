"""Rules shared by incident and service tickets: priorities, references, history, assignment."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import sqlalchemy as sa
from databases.core import Connection

from db.priorities import PRIORITIES, priority_rank  # noqa: F401  (in db/: an index uses it)
from db.tables import facilities, history, ticket_comments, users
from db.uow import UnitOfWork
from domain.actors import Actor
from domain.errors import ValidationFailed
from domain.notifications import notify
from domain.references import invalid_pk
from domain.schemas import changed_fields

Priority = Literal["low", "medium", "high", "critical"]

ASSIGNED_KIND = "ticket_assigned"

# Read-only bookkeeping that changes on every write; history would only repeat it.
_UNTRACKED = frozenset({"updated_at"})


async def check_references(
    conn: Connection, refs: Mapping[str, tuple[sa.Table, int | None]]
) -> None:
    """Raise 400 on each field whose id names no row (null means "no reference")."""
    errors: dict[str, list[str]] = {}
    for field, (table, value) in refs.items():
        if value is None:
            continue
        found = await conn.fetch_val(sa.select(table.c.id).where(table.c.id == value))
        if found is None:
            errors[field] = [invalid_pk(value)]
    if errors:
        raise ValidationFailed(errors)


def common_references(values: Mapping[str, Any]) -> dict[str, tuple[sa.Table, int | None]]:
    """The references both ticket kinds carry: facility and assignee."""
    return {
        "facility": (facilities, values.get("facility")),
        "assigned_to": (users, values.get("assigned_to")),
    }


def history_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Field → [old, new] between two representations, bookkeeping fields left out."""
    return {k: v for k, v in changed_fields(before, after).items() if k not in _UNTRACKED}


async def notify_assignee(
    uow: UnitOfWork,
    actor: Actor,
    *,
    ticket: Mapping[str, Any],
    previous_assignee: int | None,
    topic: str,
) -> None:
    """Tell a user a ticket was just assigned to them (not when they took it themselves)."""
    assignee = ticket["assigned_to"]
    if assignee is None or assignee == previous_assignee or assignee == actor.id:
        return
    await notify(
        uow,
        user_id=assignee,
        kind=ASSIGNED_KIND,
        title=f"{ticket['number']} assigned to you",
        body=ticket["title"],
        link=f"/api/{topic}/{ticket['id']}/",
    )


async def delete_thread(uow: UnitOfWork, *, subject: str, subject_id: int) -> None:
    """Drop a deleted ticket's comments and history: SQLite may hand its id out again."""
    for table in (ticket_comments, history):
        await uow.conn.execute(
            table.delete().where(table.c.subject == subject, table.c.subject_id == subject_id)
        )
