"""Time-off requests: private to the requester and managers; a manager approves or denies."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any, Literal

import sqlalchemy as sa
from databases.core import Connection

from db.aggregates import SEPARATOR, joined_text, utc_day_start
from db.statements import DetailQuery
from db.tables import shifts, time_off_requests
from db.types import Row
from db.uow import UnitOfWork
from domain import local_days
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
# The longest shift (domain/shifts.py MAX_SHIFT, which imports this module) in whole days.
MAX_SHIFT_DAYS = 1

Kind = Literal["vacation", "sick", "personal", "other"]
Status = Literal["pending", "approved", "denied", "cancelled"]


class TimeOffIn(Schema):
    kind: Kind
    start_date: dt.date
    end_date: dt.date
    reason: LongText = ""
    status: Status = "pending"
    review_note: LongText = ""


def _conflicting_shifts() -> sa.ScalarSelect[Any]:
    """Ids of the requester's live shifts overlapping the request's days at each shift's
    facility, as text (`conflicting_shift_ids` reads it).

    Each shift keeps the days it covers at its facility (domain/local_days.py), so this is
    a comparison of dates; the window on `start` is what the (user_id, start) index serves.
    """
    t, s = time_off_requests, shifts
    return (
        sa.select(joined_text(sa.cast(s.c.id, sa.Text)))
        .where(
            s.c.user_id == t.c.user_id,
            s.c.status != "cancelled",
            # A day is at most 14 hours ahead of UTC or 12 behind, and a shift lasts at
            # most MAX_SHIFT_DAYS: a shift on the request's days starts in this window.
            s.c.start < utc_day_start(t.c.end_date, 2),
            s.c.start > utc_day_start(t.c.start_date, -1 - MAX_SHIFT_DAYS),
            s.c.local_first_day <= t.c.end_date,
            s.c.local_last_day >= t.c.start_date,
        )
        .correlate(t)
        .scalar_subquery()
    )


def conflicting_shift_ids(joined: str | None) -> list[int]:
    """The ids `_conflicting_shifts` joined, in order."""
    if not joined:
        return []
    return sorted(int(item) for item in joined.split(SEPARATOR) if item)


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
        "conflicting_shifts": conflicting_shift_ids(row["conflicting_shifts"]),
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def visibility(actor: Actor) -> sa.ColumnElement[bool]:
    """The rows `actor` may see: own ones, or all for managers."""
    return visible_to(actor, time_off_requests.c.user_id)


def _query() -> sa.Select[Any]:
    return sa.select(time_off_requests, _conflicting_shifts().label("conflicting_shifts"))


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
    query = local_days.shifts_at_site(
        shifts.c.user_id, facility_id=facility_id, location_id=location_id
    )
    rows = await conn.fetch_all(query.distinct().where(shifts.c.status != "cancelled"))
    return {row["user_id"] for row in rows}


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
    """For a block that may move the shifts at the facility, or at the location's
    facilities, to other local days (`moving`: a facility to another location, a location
    to another time zone): after it, recount those shifts' stored days
    (domain/local_days.py) and tell everyone on shift there whose requests' conflicts
    changed (`conflicts_followed`)."""
    if not moving:
        yield
        return
    users = await _users_on_shift_at(uow.conn, facility_id=facility_id, location_id=location_id)
    async with conflicts_followed(uow, user_ids=users):
        yield
        await local_days.recount(uow.conn, facility_id=facility_id, location_id=location_id)


# What api/ declares the REST resource from (domain/resource.py).
RULES = ResourceRules(
    serialize=serialize,
    list_query=list_query,
    get=get_time_off,
    create=create_time_off,
    update=update_time_off,
    delete=delete_time_off,
)
