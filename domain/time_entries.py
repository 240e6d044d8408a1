"""Time entries: private timesheet rows, drafted by their owner and reviewed by a manager."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping
from typing import Any, Literal
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from databases.core import Connection
from pydantic import AwareDatetime

from db.statements import (
    DetailQuery,
    bound,
    insert_returning,
    update_returning,
    value_param,
    value_params,
)
from db.tables import incident_tickets, service_tickets, shifts, time_entries, users
from db.types import Row
from db.uow import UnitOfWork
from domain.actors import Actor, Role
from domain.errors import NotFound, PermissionDenied, ValidationFailed
from domain.limits import LongText
from domain.privacy import visible_to
from domain.recurrence import DEFAULT_TIMEZONE, user_timezone
from domain.references import check_rows
from domain.resource import ResourceRules
from domain.schemas import Schema, changed_fields, check_if_match, merge_for_update, validate

TOPIC = "time-entries"
STATUSES = ("draft", "submitted", "approved", "rejected")
REQUIRED_FIELDS = {"start", "end"}
CREATE_STATUSES = ("draft", "submitted")
EDITABLE_STATUSES = ("draft", "submitted")
REVIEW_STATUSES = ("approved", "rejected")
# Moves the owner (or a manager) may make; approve/reject come only from `submitted`.
OWNER_MOVES = {("draft", "submitted"), ("rejected", "draft")}
DELETABLE_BY_OWNER = ("draft", "submitted")

Status = Literal["draft", "submitted", "approved", "rejected"]


class TimeEntryIn(Schema):
    user: int | None = None
    date: dt.date | None = None
    start: AwareDatetime
    end: AwareDatetime
    shift: int | None = None
    incident_ticket: int | None = None
    service_ticket: int | None = None
    description: LongText = ""
    status: Status = "draft"


def duration_minutes(start: dt.datetime | None, end: dt.datetime | None) -> int | None:
    """Whole minutes from start to end (rounded down)."""
    if start is None or end is None:
        return None
    return int((end - start).total_seconds() // 60)


def serialize(row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "user": row["user_id"],
        "date": row["date"],
        "start": row["start"],
        "end": row["end"],
        "duration_minutes": duration_minutes(row["start"], row["end"]),
        "shift": row["shift_id"],
        "incident_ticket": row["incident_ticket_id"],
        "service_ticket": row["service_ticket_id"],
        "description": row["description"],
        "status": row["status"],
        "reviewed_by": row["reviewed_by"],
        "reviewed_at": row["reviewed_at"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def visibility(actor: Actor) -> sa.ColumnElement[bool]:
    """The rows `actor` may see: own ones, or all for managers."""
    return visible_to(actor, time_entries.c.user_id)


# What managers list: one query object, so api/listing.py builds each page shape once.
EVERY_ENTRY = sa.select(time_entries)


def list_query(actor: Actor) -> sa.Select[Any]:
    if actor.is_manager:
        return EVERY_ENTRY
    return sa.select(time_entries).where(visibility(actor))


# The detail read (GET, and before every write): built once, only the ids change.
_DETAIL = DetailQuery.of(EVERY_ENTRY, time_entries.c.id, owner_column=time_entries.c.user_id)


async def get_time_entry(conn: Connection, actor: Actor, entry_id: int) -> dict[str, Any] | None:
    """The entry if `actor` may see it; someone else's private row is None (404)."""
    query = (
        _DETAIL.by_id(entry_id) if actor.is_manager else _DETAIL.owned_by(actor.id, entry_id)
    )  # the rule of `visibility`, in a statement built once
    row = await conn.fetch_one(query)
    return serialize(row) if row else None


async def _check_entry(conn: Connection, entry: TimeEntryIn, *, user_id: int) -> None:
    if entry.end <= entry.start:
        raise ValidationFailed.on("end", "End must be after start.")
    await check_rows(
        conn,
        {
            "user": (users, user_id),
            "shift": (shifts, entry.shift),
            "incident_ticket": (incident_tickets, entry.incident_ticket),
            "service_ticket": (service_tickets, entry.service_ticket),
        },
    )
    if entry.shift is not None:
        owner = await conn.fetch_val(sa.select(shifts.c.user_id).where(shifts.c.id == entry.shift))
        if owner != user_id:
            raise ValidationFailed.on("shift", "This shift belongs to another user.")


async def _entry_date(conn: Connection, entry: TimeEntryIn, *, user_id: int) -> dt.date:
    """The given date, else the start's date where the user works (UTC if unknown)."""
    if entry.date is not None:
        return entry.date
    zone = await user_timezone(conn, user_id=user_id) or DEFAULT_TIMEZONE
    return entry.start.astimezone(ZoneInfo(zone)).date()


def _row_values(entry: TimeEntryIn, *, user_id: int, date: dt.date) -> dict[str, Any]:
    return {
        "user_id": user_id,
        "date": date,
        "start": entry.start,
        "end": entry.end,
        "shift_id": entry.shift,
        "incident_ticket_id": entry.incident_ticket,
        "service_ticket_id": entry.service_ticket,
        "description": entry.description,
        "status": entry.status,
    }


def _emit(uow: UnitOfWork, action: str, entry: Mapping[str, Any]) -> None:
    uow.emit(
        TOPIC, action, object_id=entry["id"], data=dict(entry), owner_id=entry["user"], private=True
    )


async def create_time_entry(
    uow: UnitOfWork, actor: Actor, data: Mapping[str, Any]
) -> dict[str, Any]:
    actor.require(Role.OPERATOR)
    entry = validate(TimeEntryIn, data)
    if entry.status not in CREATE_STATUSES:
        raise ValidationFailed.on("status", "A new time entry is a draft or submitted.")
    # `user` is read-only except for managers, who may log time for someone else.
    user_id = entry.user if actor.is_manager and entry.user is not None else actor.id
    await _check_entry(uow.conn, entry, user_id=user_id)
    date = await _entry_date(uow.conn, entry, user_id=user_id)
    values = _row_values(entry, user_id=user_id, date=date)
    row = await uow.conn.fetch_one(  # the representation without reading the row again
        insert_returning(time_entries, {**values, "created_at": uow.now, "updated_at": uow.now})
    )
    assert row is not None
    created = serialize(row)
    _emit(uow, "created", created)
    return created


def _check_status_move(actor: Actor, current: Mapping[str, Any], target: str) -> None:
    before = current["status"]
    if target == before:
        return
    if target in REVIEW_STATUSES:
        actor.require_reviewer_of(current["user"])
        if before != "submitted":
            raise ValidationFailed.on("status", "Only a submitted time entry can be reviewed.")
        return
    if (before, target) not in OWNER_MOVES:
        raise ValidationFailed.on(
            "status", f'A time entry cannot move from "{before}" to "{target}".'
        )


async def update_time_entry(
    uow: UnitOfWork,
    actor: Actor,
    entry_id: int,
    data: Mapping[str, Any],
    *,
    partial: bool,
    if_match: str | None = None,
) -> dict[str, Any]:
    current = await get_time_entry(uow.conn, actor, entry_id=entry_id)
    if current is None:
        raise NotFound()
    actor.require(Role.OPERATOR)
    check_if_match(current, if_match)
    merged = merge_for_update(current, data, partial=partial, required=REQUIRED_FIELDS)
    if not actor.is_manager:
        merged["user"] = current["user"]
    entry = validate(TimeEntryIn, merged)
    user_id = entry.user if entry.user is not None else current["user"]
    _check_status_move(actor, current, entry.status)
    date = entry.date or current["date"]
    values = _row_values(entry, user_id=user_id, date=date)
    changes = changed_fields(current, {**entry.model_dump(), "user": user_id, "date": date})
    if not changes:
        return current
    if changes.keys() - {"status"}:
        reopening = current["status"] == "rejected" and entry.status == "draft"
        if current["status"] not in EDITABLE_STATUSES and not reopening:
            raise ValidationFailed.on(
                "non_field_errors", f"A {current['status']} time entry can no longer be changed."
            )
        await _check_entry(uow.conn, entry, user_id=user_id)
    if "status" in changes and entry.status in REVIEW_STATUSES:
        values.update(reviewed_by=actor.id, reviewed_at=uow.now)
    row = await uow.conn.fetch_one(
        update_returning(time_entries, entry_id, {**values, "updated_at": uow.now})
    )
    assert row is not None  # `current` was read in this transaction
    updated = serialize(row)
    await uow.record_history(TOPIC, entry_id, changes)
    _emit(uow, "updated", updated)
    return updated


async def delete_time_entry(
    uow: UnitOfWork, actor: Actor, entry_id: int, *, if_match: str | None = None
) -> None:
    """Admins delete any entry; owners their own while it is a draft or submitted."""
    current = await get_time_entry(uow.conn, actor, entry_id=entry_id)
    if current is None:
        raise NotFound()
    owner_may = current["user"] == actor.id and current["status"] in DELETABLE_BY_OWNER
    if not (actor.is_admin or (owner_may and actor.role.at_least(Role.OPERATOR))):
        raise PermissionDenied()
    check_if_match(current, if_match)
    await uow.conn.execute(time_entries.delete().where(time_entries.c.id == entry_id))
    uow.emit(
        TOPIC,
        "deleted",
        object_id=entry_id,
        data={"id": entry_id},
        owner_id=current["user"],
        private=True,
    )


# Entries' references that the referenced row's delete nulls (ON DELETE SET NULL), by the
# table it is deleted from, with the field the REST representation shows it as.
_REFERENCES = {
    "shifts": (time_entries.c.shift_id, "shift"),
    "incident_tickets": (time_entries.c.incident_ticket_id, "incident_ticket"),
    "service_tickets": (time_entries.c.service_ticket_id, "service_ticket"),
    "users": (time_entries.c.reviewed_by, "reviewed_by"),  # whoever reviewed the entry
}


async def detach_from(uow: UnitOfWork, table: sa.Table, row_id: int) -> None:
    """Before row `row_id` of `table` is deleted: null the entries' references to it as a
    change of theirs (history, an `updated` event each).

    The database's ON DELETE SET NULL does the same silently: every socket and cached list
    total would keep the gone shift, ticket or reviewer on the entry.
    """
    statement = _detach_statement(table.name)
    values = value_params({"updated_at": uow.now})
    rows = await uow.conn.fetch_all(bound(statement, row_id=row_id, **values))
    field_name = _REFERENCES[table.name][1]
    for row in rows:
        entry = serialize(row)
        await uow.record_history(TOPIC, entry["id"], {field_name: [row_id, None]})
        _emit(uow, "updated", entry)


@functools.cache
def _detach_statement(table_name: str) -> Any:
    """`detach_from`'s UPDATE, built once per referenced table (db/statements.py)."""
    column = _REFERENCES[table_name][0]
    return (
        time_entries.update()
        .where(column == sa.bindparam("row_id"))
        .values({column.name: None, "updated_at": value_param(time_entries, "updated_at")})
        .returning(*time_entries.c)
    )


# What api/ declares the REST resource from (domain/resource.py).
RULES = ResourceRules(
    serialize=serialize,
    list_query=list_query,
    get=get_time_entry,
    create=create_time_entry,
    update=update_time_entry,
    delete=delete_time_entry,
)
