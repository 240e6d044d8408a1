"""Scheduled events: broadcasts, maintenance windows, meetings ... with their attendees."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import sqlalchemy as sa
from databases.core import Connection
from pydantic import AwareDatetime, Field

from db.aggregates import joined_text, split_ids
from db.statements import DetailQuery
from db.tables import facilities, scheduled_event_attendees, scheduled_events, users
from db.types import Row
from db.uow import UnitOfWork
from domain.actors import Actor, Role
from domain.errors import NotFound, ValidationFailed
from domain.limits import LongText
from domain.recurrence import (
    DEFAULT_TIMEZONE,
    create_series,
    facility_timezone,
    parse_rrule,
    precheck_rrule,
    user_timezone,
)
from domain.references import invalid_pk, require_row
from domain.resource import ResourceRules
from domain.schemas import Schema, changed_fields, check_if_match, merge_for_update, validate

TOPIC = "scheduled-events"
SERIES_KIND = "scheduled_event"
KINDS = ("broadcast", "maintenance", "meeting", "training", "other")
REQUIRED_FIELDS = {"title", "kind", "start", "end"}
MAX_ATTENDEES = 500

Kind = Literal["broadcast", "maintenance", "meeting", "training", "other"]


class ScheduledEventIn(Schema):
    title: str = Field(min_length=1, max_length=200)
    description: LongText = ""
    kind: Kind
    facility: int | None = None
    start: AwareDatetime
    end: AwareDatetime
    all_day: bool = False
    attendees: list[int] = Field(default_factory=list, max_length=MAX_ATTENDEES)


def attendee_ids() -> sa.ScalarSelect[Any]:
    """The event's attendee ids as `joined_text` (correlated to the outer event row)."""
    a = scheduled_event_attendees
    return (
        sa.select(joined_text(a.c.user_id))
        .where(a.c.event_id == scheduled_events.c.id)
        .correlate(scheduled_events)
        .scalar_subquery()
    )


def serialize(row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "title": row["title"],
        "description": row["description"],
        "kind": row["kind"],
        "facility": row["facility_id"],
        "start": row["start"],
        "end": row["end"],
        "all_day": row["all_day"],
        "attendees": split_ids(row["attendee_ids"]),
        "created_by": row["created_by"],
        "series": row["series_id"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


# One query object, so api/listing.py builds each page shape once (`shared_query`).
EVERY_EVENT = sa.select(scheduled_events, attendee_ids().label("attendee_ids"))


def list_query(actor: Actor | None = None) -> sa.Select[Any]:
    return EVERY_EVENT


def has_attendee(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[bool]:
    """Events with an attendee row matching `condition` (the `attendee` filter)."""
    a = scheduled_event_attendees
    return sa.exists().where(a.c.event_id == scheduled_events.c.id, condition)


# The detail read (GET, and before every write): built once, only the id changes.
_DETAIL = DetailQuery.of(EVERY_EVENT, scheduled_events.c.id)


async def get_scheduled_event(
    conn: Connection, actor: Actor | None, event_id: int
) -> dict[str, Any] | None:
    row = await conn.fetch_one(_DETAIL.by_id(event_id))
    return serialize(row) if row else None


async def _require(conn: Connection, event_id: int) -> dict[str, Any]:
    found = await get_scheduled_event(conn, None, event_id=event_id)
    if found is None:
        raise NotFound()
    return found


async def forget_user(uow: UnitOfWork, user_id: int) -> None:
    """Before user `user_id` is deleted: take them off the events they attend and out of
    `created_by`, as a change of each event (history, an `updated` event); the database
    (ON DELETE CASCADE, SET NULL) would do it silently, and every socket would keep them."""
    e, a = scheduled_events, scheduled_event_attendees
    attended = await uow.conn.fetch_all(
        a.delete().where(a.c.user_id == user_id).returning(a.c.event_id)
    )
    created = await uow.conn.fetch_all(
        e.update().where(e.c.created_by == user_id).values(created_by=None).returning(e.c.id)
    )
    attended_ids = {row["event_id"] for row in attended}
    created_ids = {row["id"] for row in created}
    for event_id in sorted(attended_ids | created_ids):
        await uow.conn.execute(e.update().where(e.c.id == event_id).values(updated_at=uow.now))
        updated = await _require(uow.conn, event_id)
        changes: dict[str, list[Any]] = {}
        if event_id in attended_ids:
            before = sorted([*updated["attendees"], user_id])
            changes["attendees"] = [before, updated["attendees"]]
        if event_id in created_ids:
            changes["created_by"] = [user_id, None]
        await uow.record_history(TOPIC, event_id, changes)
        uow.emit(TOPIC, "updated", object_id=event_id, data=updated)


async def _check_event(conn: Connection, event: ScheduledEventIn) -> list[int]:
    """Validate times and references; return the attendee ids, sorted and unique."""
    if event.end <= event.start:
        raise ValidationFailed.on("end", "End must be after start.")
    await require_row(conn, field="facility", table=facilities, value=event.facility)
    wanted = sorted(set(event.attendees))
    if wanted:
        rows = await conn.fetch_all(sa.select(users.c.id).where(users.c.id.in_(wanted)))
        missing = [uid for uid in wanted if uid not in {row[0] for row in rows}]
        if missing:
            raise ValidationFailed({"attendees": [invalid_pk(uid) for uid in missing]})
    return wanted


def _row_values(event: ScheduledEventIn) -> dict[str, Any]:
    return {
        "title": event.title,
        "description": event.description,
        "kind": event.kind,
        "facility_id": event.facility,
        "start": event.start,
        "end": event.end,
        "all_day": event.all_day,
    }


async def _set_attendees(uow: UnitOfWork, event_id: int, user_ids: list[int]) -> None:
    a = scheduled_event_attendees
    await uow.conn.execute(a.delete().where(a.c.event_id == event_id))
    for user_id in user_ids:
        await uow.conn.execute(a.insert().values(event_id=event_id, user_id=user_id))


async def _series_timezone(uow: UnitOfWork, event: ScheduledEventIn, actor: Actor) -> str:
    """Recur in the facility's zone, else the creator's, else UTC."""
    return (
        await facility_timezone(uow.conn, facility_id=event.facility)
        or await user_timezone(uow.conn, user_id=actor.id)
        or DEFAULT_TIMEZONE
    )


def _recurrence_text(data: Mapping[str, Any]) -> str | None:
    raw = data.get("recurrence")
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise ValidationFailed.on("recurrence", "Not a valid string.")
    return raw


async def precheck_create(actor: Actor, data: Mapping[str, Any]) -> None:
    """Before the transaction: refuse a bad body or recurrence rule (the slow part)."""
    actor.require(Role.MANAGER)
    event = validate(ScheduledEventIn, data)
    await precheck_rrule(data, dtstart=event.start)


async def create_scheduled_event(
    uow: UnitOfWork, actor: Actor, data: Mapping[str, Any]
) -> dict[str, Any]:
    actor.require(Role.MANAGER)
    event = validate(ScheduledEventIn, data)
    recurrence = _recurrence_text(data)
    attendees = await _check_event(uow.conn, event)
    series_id = None
    if recurrence is not None:
        timezone = await _series_timezone(uow, event, actor)
        rule = await parse_rrule(recurrence, dtstart=event.start, timezone=timezone)
        series_id = await create_series(
            uow,
            kind=SERIES_KIND,
            rrule_text=rule,
            dtstart=event.start,
            duration_secs=int((event.end - event.start).total_seconds()),
            timezone=timezone,
            template={
                "title": event.title,
                "description": event.description,
                "kind": event.kind,
                "facility_id": event.facility,
                "all_day": event.all_day,
                "attendees": attendees,
                "created_by": actor.id,
            },
            created_by=actor.id,
        )
    event_id = await uow.conn.execute(
        scheduled_events.insert().values(
            **_row_values(event),
            created_by=actor.id,
            series_id=series_id,
            created_at=uow.now,
            updated_at=uow.now,
        )
    )
    await _set_attendees(uow, event_id, attendees)
    created = await _require(uow.conn, event_id)
    uow.emit(TOPIC, "created", object_id=event_id, data=created)
    return created


async def update_scheduled_event(
    uow: UnitOfWork,
    actor: Actor,
    event_id: int,
    data: Mapping[str, Any],
    *,
    partial: bool,
    if_match: str | None = None,
) -> dict[str, Any]:
    actor.require(Role.MANAGER)
    current = await _require(uow.conn, event_id)
    check_if_match(current, if_match)
    merged = merge_for_update(current, data, partial=partial, required=REQUIRED_FIELDS)
    event = validate(ScheduledEventIn, merged)
    attendees = await _check_event(uow.conn, event)
    changes = changed_fields(current, {**event.model_dump(), "attendees": attendees})
    if not changes:
        return current
    await uow.conn.execute(
        scheduled_events.update()
        .where(scheduled_events.c.id == event_id)
        .values(**_row_values(event), updated_at=uow.now)
    )
    if "attendees" in changes:
        await _set_attendees(uow, event_id, attendees)
    updated = await _require(uow.conn, event_id)
    await uow.record_history(TOPIC, event_id, changes)
    uow.emit(TOPIC, "updated", object_id=event_id, data=updated)
    return updated


async def delete_scheduled_event(
    uow: UnitOfWork, actor: Actor, event_id: int, *, if_match: str | None = None
) -> None:
    actor.require(Role.ADMIN)
    current = await _require(uow.conn, event_id)
    check_if_match(current, if_match)
    await uow.conn.execute(scheduled_events.delete().where(scheduled_events.c.id == event_id))
    uow.emit(TOPIC, "deleted", object_id=event_id, data={"id": event_id})


# What api/ declares the REST resource from (domain/resource.py).
RULES = ResourceRules(
    serialize=serialize,
    list_query=list_query,
    get=get_scheduled_event,
    create=create_scheduled_event,
    update=update_scheduled_event,
    delete=delete_scheduled_event,
)
