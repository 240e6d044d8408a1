"""Time-off requests: private to the requester and managers; a manager approves or denies."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any, Literal
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from databases.core import Connection

from db.aggregates import SEPARATOR, epoch_secs, joined_text, utc_day_start
from db.statements import DetailQuery
from db.tables import facilities, locations, shifts, time_off_requests
from db.types import Row
from db.uow import UnitOfWork
from domain.actors import Actor, Role
from domain.errors import NotFound, PermissionDenied, ValidationFailed
from domain.limits import LongText
from domain.notifications import notify
from domain.privacy import visible_to
from domain.resource import ResourceRules
from domain.schemas import Schema, changed_fields, check_if_match, merge_for_update, validate

TOPIC = "time-off-requests"
KINDS = ("vacation", "sick", "personal", "other")
STATUSES = ("pending", "approved", "denied", "cancelled")
REQUIRED_FIELDS = {"kind", "start_date", "end_date"}
REVIEW_STATUSES = ("approved", "denied")
DAY_SECS = 24 * 3600
# The longest shift (domain/shifts.py MAX_SHIFT, which imports this module) in whole days.
MAX_SHIFT_DAYS = 1
_FIELD_SEP = "|"

Kind = Literal["vacation", "sick", "personal", "other"]
Status = Literal["pending", "approved", "denied", "cancelled"]


class TimeOffIn(Schema):
    kind: Kind
    start_date: dt.date
    end_date: dt.date
    reason: LongText = ""
    status: Status = "pending"
    review_note: LongText = ""


def _shift_candidates() -> sa.ScalarSelect[Any]:
    """The requester's live shifts near the dates, as "id|start|end|zone" text.

    Dates are days at each shift's facility, so the exact test runs in Python
    (`conflicting_shift_ids`); SQL only narrows to a window a day or more wider each side.
    """
    t, s = time_off_requests, shifts
    sep = sa.literal(_FIELD_SEP, sa.Text)
    item = (
        sa.cast(s.c.id, sa.Text)
        + sep
        + sa.cast(epoch_secs(s.c.start), sa.Text)
        + sep
        + sa.cast(epoch_secs(s.c.end), sa.Text)
        + sep
        + locations.c.timezone
    )
    return (
        sa.select(joined_text(item))
        .select_from(
            s.join(facilities, facilities.c.id == s.c.facility_id).join(
                locations, locations.c.id == facilities.c.location_id
            )
        )
        .where(
            s.c.user_id == t.c.user_id,
            s.c.status != "cancelled",
            # On the stored columns, so the (user_id, start) index bounds the range on both
            # sides: a shift ending inside the window started at most MAX_SHIFT_DAYS before.
            s.c.start < utc_day_start(t.c.end_date, 2),
            s.c.start > utc_day_start(t.c.start_date, -1 - MAX_SHIFT_DAYS),
            s.c.end > utc_day_start(t.c.start_date, -1),
        )
        .correlate(t)
        .scalar_subquery()
    )


_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()


# Days x zones whose local midnight is kept: a list page asks for the same few again and again.
MIDNIGHTS_CACHED = 4096


@functools.lru_cache(maxsize=MIDNIGHTS_CACHED)
def _local_midnight_secs(ordinal: int, zone_name: str) -> int:
    """Epoch seconds of a day's local midnight, in whole-number arithmetic.

    Stored rows may sit on the calendar's last day, where `date + 1 day` or a UTC conversion
    overflows Python's datetime; the zone's offset is read at the nearest representable day.
    """
    nearest = dt.date.fromordinal(min(max(ordinal, 1), dt.date.max.toordinal()))
    offset = ZoneInfo(zone_name).utcoffset(dt.datetime.combine(nearest, dt.time()))
    return (ordinal - _EPOCH_ORDINAL) * DAY_SECS - int((offset or dt.timedelta()).total_seconds())


def conflicting_shift_ids(candidates: str | None, start: dt.date, end: dt.date) -> list[int]:
    """Ids of candidate shifts that overlap the days start..end at their facility."""
    if not candidates:
        return []
    first, after = start.toordinal(), end.toordinal() + 1
    found: set[int] = set()
    for item in candidates.split(SEPARATOR):
        if not item:
            continue
        shift_id, shift_start, shift_end, zone_name = item.split(_FIELD_SEP, 3)
        day_start = _local_midnight_secs(first, zone_name)
        day_end = _local_midnight_secs(after, zone_name)
        if int(shift_start) < day_end and int(shift_end) > day_start:
            found.add(int(shift_id))
    return sorted(found)


def serialize(row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "user": row["user_id"],
        "kind": row["kind"],
        "start_date": row["start_date"],
        "end_date": row["end_date"],
        "reason": row["reason"],
        "status": row["status"],
        "reviewed_by": row["reviewed_by"],
        "reviewed_at": row["reviewed_at"],
        "review_note": row["review_note"],
        "conflicting_shifts": conflicting_shift_ids(
            row["shift_candidates"], row["start_date"], row["end_date"]
        ),
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def visibility(actor: Actor) -> sa.ColumnElement[bool]:
    """The rows `actor` may see: own ones, or all for managers."""
    return visible_to(actor, time_off_requests.c.user_id)


def _query() -> sa.Select[Any]:
    return sa.select(time_off_requests, _shift_candidates().label("shift_candidates"))


# What managers list: one query object, so api/listing.py builds each page shape once.
EVERY_REQUEST = _query()


def list_query(actor: Actor) -> sa.Select[Any]:
    if actor.is_manager:
        return EVERY_REQUEST
    return _query().where(visibility(actor))


# The detail read (GET, and before every write): built once, only the ids change.
_DETAIL = DetailQuery.of(
    EVERY_REQUEST, time_off_requests.c.id, owner_column=time_off_requests.c.user_id
)


async def get_time_off(conn: Connection, actor: Actor, request_id: int) -> dict[str, Any] | None:
    """The request if `actor` may see it; someone else's private row is None (404)."""
    query = (
        _DETAIL.by_id(request_id) if actor.is_manager else _DETAIL.owned_by(actor.id, request_id)
    )  # the rule of `visibility`, in a statement built once
    row = await conn.fetch_one(query)
    return serialize(row) if row else None


async def _load(conn: Connection, request_id: int) -> dict[str, Any]:
    row = await conn.fetch_one(_DETAIL.by_id(request_id))
    if row is None:
        raise NotFound()
    return serialize(row)


def _check_dates(request: TimeOffIn) -> None:
    if request.end_date < request.start_date:
        raise ValidationFailed.on("end_date", "End date must not be before start date.")


def _emit(uow: UnitOfWork, action: str, request: Mapping[str, Any]) -> None:
    uow.emit(
        TOPIC,
        action,
        object_id=request["id"],
        data=dict(request),
        owner_id=request["user"],
        private=True,
    )


async def create_time_off(uow: UnitOfWork, actor: Actor, data: Mapping[str, Any]) -> dict[str, Any]:
    actor.require(Role.OPERATOR)
    request = validate(TimeOffIn, data)
    _check_dates(request)
    if request.status != "pending":
        raise ValidationFailed.on("status", "A new request is pending.")
    request_id = await uow.conn.execute(
        time_off_requests.insert().values(
            user_id=actor.id,
            kind=request.kind,
            start_date=request.start_date,
            end_date=request.end_date,
            reason=request.reason,
            status="pending",
            review_note="",
            created_at=uow.now,
            updated_at=uow.now,
        )
    )
    created = await _load(uow.conn, request_id)
    _emit(uow, "created", created)
    return created


def _check_move(actor: Actor, current: Mapping[str, Any], target: str) -> None:
    before = current["status"]
    if target == before:
        return
    if target in REVIEW_STATUSES:
        actor.require_reviewer_of(current["user"])
    if target == "cancelled" and current["user"] != actor.id:
        raise PermissionDenied()
    if before != "pending" or target == "pending":
        raise ValidationFailed.on("status", f'A request cannot move from "{before}" to "{target}".')


async def update_time_off(
    uow: UnitOfWork,
    actor: Actor,
    request_id: int,
    data: Mapping[str, Any],
    *,
    partial: bool,
    if_match: str | None = None,
) -> dict[str, Any]:
    current = await get_time_off(uow.conn, actor, request_id=request_id)
    if current is None:
        raise NotFound()
    actor.require(Role.OPERATOR)
    check_if_match(current, if_match)
    merged = merge_for_update(current, data, partial=partial, required=REQUIRED_FIELDS)
    if not actor.is_manager:
        merged["review_note"] = current["review_note"]  # the reviewer's field
    request = validate(TimeOffIn, merged)
    _check_dates(request)
    _check_move(actor, current, request.status)
    changes = changed_fields(current, request.model_dump())
    if not changes:
        return current
    if changes.keys() & {"kind", "start_date", "end_date", "reason"}:
        if current["user"] != actor.id:
            raise PermissionDenied()
        if current["status"] != "pending":
            raise ValidationFailed.on("non_field_errors", "Only a pending request can be changed.")
    values = request.model_dump()
    reviewed = "status" in changes and request.status in REVIEW_STATUSES
    if reviewed:
        values.update(reviewed_by=actor.id, reviewed_at=uow.now)
    await uow.conn.execute(
        time_off_requests.update()
        .where(time_off_requests.c.id == request_id)
        .values(**values, updated_at=uow.now)
    )
    updated = await _load(uow.conn, request_id)
    await uow.record_history(TOPIC, request_id, changes)
    _emit(uow, "updated", updated)
    if reviewed:
        await notify(
            uow,
            user_id=updated["user"],
            kind="time_off_reviewed",
            title=f"Your time off request was {updated['status']}",
            body=updated["review_note"],
            link=f"/api/time-off-requests/{request_id}/",
        )
    return updated


async def delete_time_off(
    uow: UnitOfWork, actor: Actor, request_id: int, *, if_match: str | None = None
) -> None:
    """Admins only: requesters cancel instead, so the record stays."""
    current = await get_time_off(uow.conn, actor, request_id=request_id)
    if current is None:
        raise NotFound()
    actor.require(Role.ADMIN)
    check_if_match(current, if_match)
    await uow.conn.execute(time_off_requests.delete().where(time_off_requests.c.id == request_id))
    uow.emit(
        TOPIC,
        "deleted",
        object_id=request_id,
        data={"id": request_id},
        owner_id=current["user"],
        private=True,
    )


async def forget_reviewer(uow: UnitOfWork, user_id: int) -> None:
    """Before user `user_id` is deleted: null `reviewed_by` on the requests they reviewed, as
    a change of each (history, an `updated` event); the database's ON DELETE SET NULL would
    do it silently, and sockets and cached totals would keep the gone reviewer."""
    t = time_off_requests
    reviewed = await uow.conn.fetch_all(
        t.update()
        .where(t.c.reviewed_by == user_id)
        .values(reviewed_by=None, updated_at=uow.now)
        .returning(t.c.id)
    )
    for row in reviewed:
        request = await _load(uow.conn, row["id"])
        await uow.record_history(TOPIC, request["id"], {"reviewed_by": [user_id, None]})
        _emit(uow, "updated", request)


async def _requests_of(conn: Connection, user_ids: set[int]) -> dict[int, dict[str, Any]]:
    if not user_ids:
        return {}
    rows = await conn.fetch_all(_query().where(time_off_requests.c.user_id.in_(user_ids)))
    return {row["id"]: serialize(row) for row in rows}


async def _users_on_shift_at(
    conn: Connection, *, facility_id: int | None, location_id: int | None
) -> set[int]:
    """Who has a live shift at the facility, or at any facility of the location."""
    s, f = shifts, facilities
    query = sa.select(s.c.user_id).distinct().where(s.c.status != "cancelled")
    if facility_id is not None:
        query = query.where(s.c.facility_id == facility_id)
    if location_id is not None:
        query = query.join(f, f.c.id == s.c.facility_id).where(f.c.location_id == location_id)
    return {row["user_id"] for row in await conn.fetch_all(query)}


@asynccontextmanager
async def conflicts_followed(
    uow: UnitOfWork, *, user_ids: Iterable[int | None]
) -> AsyncIterator[None]:
    """Emit `updated` for these users' requests whose `conflicting_shifts` the block changed.

    Shift writes run inside this, and a facility's move or a location's new time zone (a
    request's days are local to each shift's facility): without it live clients would keep
    showing a request's conflicts as they were when the request itself was last written.
    """
    users = {user_id for user_id in user_ids if user_id is not None}
    before = await _requests_of(uow.conn, users)
    yield
    for request_id, request in (await _requests_of(uow.conn, users)).items():
        old = before.get(request_id)
        if old is not None and old["conflicting_shifts"] != request["conflicting_shifts"]:
            _emit(uow, "updated", request)


@asynccontextmanager
async def local_days_followed(
    uow: UnitOfWork,
    *,
    moving: bool,
    facility_id: int | None = None,
    location_id: int | None = None,
) -> AsyncIterator[None]:
    """`conflicts_followed` for everyone on shift at the facility, or at the location's
    facilities, when the block moves their shifts to other local days (`moving`: a facility
    to another location, a location to another time zone); days are local to each facility."""
    users = (
        await _users_on_shift_at(uow.conn, facility_id=facility_id, location_id=location_id)
        if moving
        else set()
    )
    async with conflicts_followed(uow, user_ids=users):
        yield


# What api/ declares the REST resource from (domain/resource.py).
RULES = ResourceRules(
    serialize=serialize,
    list_query=list_query,
    get=get_time_off,
    create=create_time_off,
    update=update_time_off,
    delete=delete_time_off,
)
