"""Shifts: who works where and when; never two live shifts of one person at once."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from databases.core import Connection
from pydantic import AwareDatetime, Field

from db.local_days import covered_days
from db.statements import DetailQuery, insert_returning, update_returning
from db.tables import facilities, shifts, users
from db.types import Row
from db.uow import UnitOfWork
from domain import time_entries
from domain.actors import Actor, Role
from domain.errors import Conflict, NotFound, ValidationFailed
from domain.limits import LongText
from domain.notifications import notify
from domain.recurrence import (
    DEFAULT_TIMEZONE,
    create_series,
    facility_timezone,
    parse_rrule,
    precheck_rrule,
)
from domain.references import check_rows
from domain.resource import ResourceRules
from domain.schemas import Schema, changed_fields, check_if_match, merge_for_update, validate
from domain.time_off import conflicts_followed

TOPIC = "shifts"
ACTIVE_SHIFT_STATUSES = ("scheduled", "confirmed")  # the shifts people will turn up for
SERIES_KIND = "shift"
STATUSES = ("scheduled", "confirmed", "completed", "cancelled")
REQUIRED_FIELDS = {"user", "facility", "start", "end"}
MAX_SHIFT = timedelta(hours=24)
# pg_advisory_xact_lock(key, user_id): one user's schedule is checked by one writer at a time.
SCHEDULE_LOCK_KEY = 0x42534846  # "BSHF"
CREATE_STATUSES = ("scheduled", "confirmed", "completed")
MOVES: dict[str, set[str]] = {
    "scheduled": {"confirmed", "completed", "cancelled"},
    "confirmed": {"scheduled", "completed", "cancelled"},
    "completed": set(),
    "cancelled": {"scheduled"},  # reinstate; the overlap check runs again
}

Status = Literal["scheduled", "confirmed", "completed", "cancelled"]


class ShiftIn(Schema):
    user: int
    facility: int
    position: str = Field(default="", max_length=200)
    start: AwareDatetime
    end: AwareDatetime
    status: Status = "scheduled"
    notes: LongText = ""


def serialize(row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "user": row["user_id"],
        "facility": row["facility_id"],
        "position": row["position"],
        "start": row["start"],
        "end": row["end"],
        "status": row["status"],
        "notes": row["notes"],
        "series": row["series_id"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


# Every role sees every shift: one query object, so api/listing.py builds each page shape
# once (`shared_query`).
EVERY_SHIFT = sa.select(shifts)


def list_query(actor: Actor | None = None) -> sa.Select[Any]:
    return EVERY_SHIFT


# The detail read (GET, and before every write): built once, only the id changes.
_DETAIL = DetailQuery.of(EVERY_SHIFT, shifts.c.id)


async def get_shift(conn: Connection, actor: Actor | None, shift_id: int) -> dict[str, Any] | None:
    row = await conn.fetch_one(_DETAIL.by_id(shift_id))
    return serialize(row) if row else None


async def _require(conn: Connection, shift_id: int) -> dict[str, Any]:
    found = await get_shift(conn, None, shift_id=shift_id)
    if found is None:
        raise NotFound()
    return found


def check_times(start: datetime, end: datetime) -> None:
    """`end` after `start`, and a shift lasts at most 24 hours."""
    if end <= start:
        raise ValidationFailed.on("end", "End must be after start.")
    if end - start > MAX_SHIFT:
        raise ValidationFailed.on("end", "A shift lasts at most 24 hours.")


async def lock_user_schedule(uow: UnitOfWork, *, user_id: int) -> None:
    """PostgreSQL: serialize overlap checks per user until this transaction ends."""
    if uow.store.is_postgres:
        await uow.conn.execute(sa.select(sa.func.pg_advisory_xact_lock(SCHEDULE_LOCK_KEY, user_id)))


async def find_overlap(
    conn: Connection,
    *,
    user_id: int,
    start: datetime,
    end: datetime,
    exclude_id: int | None = None,
) -> Row | None:
    """The first non-cancelled shift of `user_id` overlapping [start, end): id, start, end.

    The one overlap rule, for shifts written through the API and materialized by series.
    """
    query = (
        sa.select(shifts.c.id, shifts.c.start, shifts.c.end)
        .where(
            shifts.c.user_id == user_id,
            shifts.c.status != "cancelled",
            shifts.c.start < end,
            shifts.c.end > start,
        )
        .order_by(shifts.c.start, shifts.c.id)
        .limit(1)
    )
    if exclude_id is not None:
        query = query.where(shifts.c.id != exclude_id)
    row = await conn.fetch_one(query)
    return row if row else None


async def _check_no_overlap(
    uow: UnitOfWork, *, user_id: int, start: datetime, end: datetime, exclude_id: int | None
) -> None:
    await lock_user_schedule(uow, user_id=user_id)
    other = await find_overlap(
        uow.conn, user_id=user_id, start=start, end=end, exclude_id=exclude_id
    )
    if other is not None:
        raise Conflict(f"This shift overlaps shift {other['id']} of the same user.")


async def _check_refs(conn: Connection, shift: ShiftIn) -> None:
    await check_rows(conn, {"user": (users, shift.user), "facility": (facilities, shift.facility)})


def _row_values(shift: ShiftIn, *, zone: str) -> dict[str, Any]:
    """The row's columns; `zone` is the facility's, where the shift's days are counted."""
    return {
        "user_id": shift.user,
        "facility_id": shift.facility,
        "position": shift.position,
        "start": shift.start,
        "end": shift.end,
        "status": shift.status,
        "notes": shift.notes,
        **covered_days(shift.start, shift.end, zone),
    }


def _recurrence_text(data: Mapping[str, Any]) -> str | None:
    raw = data.get("recurrence")
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise ValidationFailed.on("recurrence", "Not a valid string.")
    return raw


async def _notify(uow: UnitOfWork, shift: Mapping[str, Any], *, kind: str, title: str) -> None:
    when = f"{shift['start']:%Y-%m-%d %H:%M} UTC"
    body = f"{shift['position'] or 'Shift'} from {when}, facility {shift['facility']}."
    await notify(
        uow,
        user_id=shift["user"],
        kind=kind,
        title=title,
        body=body,
        link=f"/api/shifts/{shift['id']}/",
    )


async def precheck_create(actor: Actor, data: Mapping[str, Any]) -> None:
    """Before the transaction: refuse a bad body or recurrence rule (the slow part)."""
    actor.require(Role.MANAGER)
    shift = validate(ShiftIn, data)
    await precheck_rrule(data, dtstart=shift.start)


async def create_shift(uow: UnitOfWork, actor: Actor, data: Mapping[str, Any]) -> dict[str, Any]:
    actor.require(Role.MANAGER)
    shift = validate(ShiftIn, data)
    recurrence = _recurrence_text(data)
    check_times(shift.start, shift.end)
    if shift.status not in CREATE_STATUSES:
        raise ValidationFailed.on("status", f'A new shift cannot be "{shift.status}".')
    await _check_refs(uow.conn, shift)
    rule = None
    timezone = await facility_timezone(uow.conn, facility_id=shift.facility) or DEFAULT_TIMEZONE
    if recurrence is not None:
        rule = await parse_rrule(recurrence, dtstart=shift.start, timezone=timezone)
    await _check_no_overlap(
        uow, user_id=shift.user, start=shift.start, end=shift.end, exclude_id=None
    )
    series_id = None
    if rule is not None:
        series_id = await create_series(
            uow,
            kind=SERIES_KIND,
            rrule_text=rule,
            dtstart=shift.start,
            duration_secs=int((shift.end - shift.start).total_seconds()),
            timezone=timezone,
            template={
                "user_id": shift.user,
                "facility_id": shift.facility,
                "position": shift.position,
                "notes": shift.notes,
            },
            created_by=actor.id,
        )
    values = {**_row_values(shift, zone=timezone), "series_id": series_id}
    async with conflicts_followed(uow, user_ids=[shift.user]):
        row = await uow.conn.fetch_one(  # the representation without reading the row again
            insert_returning(shifts, {**values, "created_at": uow.now, "updated_at": uow.now})
        )
    assert row is not None
    created = serialize(row)
    uow.emit(TOPIC, "created", object_id=created["id"], data=created)
    await _notify(uow, created, kind="shift_assigned", title="New shift assigned to you")
    return created


def _check_move(before: str, after: str) -> None:
    if after != before and after not in MOVES[before]:
        raise ValidationFailed.on("status", f'A shift cannot move from "{before}" to "{after}".')


async def update_shift(
    uow: UnitOfWork,
    actor: Actor,
    shift_id: int,
    data: Mapping[str, Any],
    *,
    partial: bool,
    if_match: str | None = None,
) -> dict[str, Any]:
    actor.require(Role.MANAGER)
    current = await _require(uow.conn, shift_id)
    check_if_match(current, if_match)
    merged = merge_for_update(current, data, partial=partial, required=REQUIRED_FIELDS)
    shift = validate(ShiftIn, merged)
    check_times(shift.start, shift.end)
    _check_move(current["status"], shift.status)
    changes = changed_fields(current, shift.model_dump())
    if not changes:
        return current
    await _check_refs(uow.conn, shift)
    if shift.status != "cancelled" and changes.keys() & {"user", "start", "end", "status"}:
        await _check_no_overlap(
            uow, user_id=shift.user, start=shift.start, end=shift.end, exclude_id=shift_id
        )
    zone = await facility_timezone(uow.conn, facility_id=shift.facility) or DEFAULT_TIMEZONE
    values = _row_values(shift, zone=zone)
    async with conflicts_followed(uow, user_ids=[current["user"], shift.user]):
        row = await uow.conn.fetch_one(
            update_returning(shifts, shift_id, {**values, "updated_at": uow.now})
        )
    assert row is not None  # `current` was read in this transaction
    updated = serialize(row)
    await uow.record_history(TOPIC, shift_id, changes)
    uow.emit(TOPIC, "updated", object_id=shift_id, data=updated)
    await _notify_change(uow, current, updated, changes)
    return updated


async def _notify_change(
    uow: UnitOfWork,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    changes: Mapping[str, Any],
) -> None:
    if "user" in changes:
        await _notify(uow, before, kind="shift_cancelled", title="A shift was taken off you")
        await _notify(uow, after, kind="shift_assigned", title="New shift assigned to you")
    elif after["status"] == "cancelled":
        await _notify(uow, after, kind="shift_cancelled", title="Your shift was cancelled")
    else:
        await _notify(uow, after, kind="shift_changed", title="Your shift was changed")


async def delete_shift(
    uow: UnitOfWork, actor: Actor, shift_id: int, *, if_match: str | None = None
) -> None:
    actor.require(Role.ADMIN)
    current = await _require(uow.conn, shift_id)
    check_if_match(current, if_match)
    await time_entries.detach_from(uow, shifts, shift_id)
    async with conflicts_followed(uow, user_ids=[current["user"]]):
        await uow.conn.execute(shifts.delete().where(shifts.c.id == shift_id))
    uow.emit(TOPIC, "deleted", object_id=shift_id, data={"id": shift_id})
    if current["status"] in ("scheduled", "confirmed"):
        await _notify(uow, current, kind="shift_cancelled", title="Your shift was removed")


# -- who is on shift, and reminders before a shift ---------------------------------------------


async def on_shift_user_ids(conn: Connection, *, facility_id: int, at: datetime) -> set[int]:
    """Users with an active shift at the facility at that moment."""
    rows = await conn.fetch_all(
        sa.select(shifts.c.user_id).where(
            shifts.c.facility_id == facility_id,
            shifts.c.status.in_(ACTIVE_SHIFT_STATUSES),
            shifts.c.start <= at,
            shifts.c.end > at,
        )
    )
    return {row[0] for row in rows}


def _reminder_due(now: datetime, lead_secs: int) -> sa.ColumnElement[bool]:
    """Not reminded yet, active, and starting within the next `lead_secs`."""
    return sa.and_(
        shifts.c.reminded_at.is_(None),
        shifts.c.status.in_(ACTIVE_SHIFT_STATUSES),
        shifts.c.start > now,
        shifts.c.start <= now + timedelta(seconds=lead_secs),
    )


async def shifts_to_remind(conn: Connection, *, now: datetime, lead_secs: int) -> list[int]:
    """Ids of the shifts whose reminder is due, soonest first."""
    query = sa.select(shifts.c.id).where(_reminder_due(now, lead_secs)).order_by(shifts.c.start)
    return [row[0] for row in await conn.fetch_all(query)]


async def remind_of_shift(uow: UnitOfWork, *, shift_id: int, lead_secs: int) -> bool:
    """Claim (reminded_at → now) and notify the user once; False when no longer due."""
    claimed = await uow.conn.fetch_one(
        shifts.update()
        .where(shifts.c.id == shift_id, _reminder_due(uow.now, lead_secs))
        .values(reminded_at=uow.now)
        .returning(shifts.c.id)
    )
    if claimed is None:
        return False
    row = await uow.conn.fetch_one(sa.select(shifts).where(shifts.c.id == shift_id))
    assert row is not None  # claimed in this transaction
    minutes = max(1, round((row["start"] - uow.now).total_seconds() / 60))
    await notify(
        uow,
        user_id=row["user_id"],
        kind="shift_reminder",
        title=f"Your shift starts in {minutes} minutes",
        body=f"{row['position'] or 'Shift'} starts at {row['start']:%Y-%m-%d %H:%M} UTC.",
        link=f"/api/shifts/{shift_id}/",
    )
    return True


# What api/ declares the REST resource from (domain/resource.py).
RULES = ResourceRules(
    serialize=serialize,
    list_query=list_query,
    get=get_shift,
    create=create_shift,
    update=update_shift,
    delete=delete_shift,
)
