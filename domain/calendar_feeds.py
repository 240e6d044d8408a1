"""Secret, revocable iCalendar feeds: a user's own shifts and events, or one facility's."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import sqlalchemy as sa
from databases.core import Connection
from pydantic import StrictInt

from db.statements import DetailQuery
from db.tables import (
    calendar_feeds,
    facilities,
    locations,
    scheduled_event_attendees,
    scheduled_events,
    shifts,
    users,
)
from db.types import Row
from db.uow import UnitOfWork
from domain.actors import Actor, Role
from domain.errors import NotFound, ValidationFailed
from domain.resource import ResourceRules
from domain.schemas import Schema, validate

FEED_PAST_DAYS = 31
FEED_FUTURE_DAYS = 366
TOKEN_BYTES = 32
PRODID = "-//BMS Broadcast Management System//Calendar feed//EN"


class FeedIn(Schema):
    facility: StrictInt | None = None


def hash_token(token: str) -> str:
    """Only the hash is stored: a database leak exposes no live feed URLs."""
    return hashlib.sha256(token.encode()).hexdigest()


def feed_path(token: str) -> str:
    return f"/api/calendar/{token}.ics"


def serialize(row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "facility": row["facility_id"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def list_query(actor: Actor) -> sa.Select[Any]:
    """A user's own live feeds; the token itself is shown only once, at creation."""
    return sa.select(calendar_feeds).where(
        calendar_feeds.c.owner_id == actor.id, calendar_feeds.c.revoked_at.is_(None)
    )


# The detail read (`list_query` for one id): built once, only the ids change.
_DETAIL = DetailQuery.of(
    sa.select(calendar_feeds).where(calendar_feeds.c.revoked_at.is_(None)),
    calendar_feeds.c.id,
    owner_column=calendar_feeds.c.owner_id,
)


async def get_feed(conn: Connection, actor: Actor, feed_id: int) -> dict[str, Any] | None:
    row = await conn.fetch_one(_DETAIL.owned_by(actor.id, feed_id))
    return serialize(row) if row else None


async def create_feed(uow: UnitOfWork, actor: Actor, data: Mapping[str, Any]) -> dict[str, Any]:
    """Any user gets a personal feed; a facility feed is for managers."""
    values = validate(FeedIn, data)
    if values.facility is not None:
        actor.require(Role.MANAGER)
        found = await uow.conn.fetch_val(
            sa.select(facilities.c.id).where(facilities.c.id == values.facility)
        )
        if found is None:
            raise ValidationFailed.on("facility", "Invalid pk - object does not exist.")
    token = secrets.token_urlsafe(TOKEN_BYTES)
    feed_id = await uow.conn.execute(
        calendar_feeds.insert().values(
            token_hash=hash_token(token),
            owner_id=actor.id,
            facility_id=values.facility,
            created_at=uow.now,
            updated_at=uow.now,
        )
    )
    return {
        "id": feed_id,
        "facility": values.facility,
        "token": token,
        "url": feed_path(token),
        "created_at": uow.now,
        "updated_at": uow.now,
    }


async def revoke_user_feeds(uow: UnitOfWork, *, user_id: int) -> None:
    """End every feed URL of a user (password change or reset); new ones are issued on request."""
    await uow.conn.execute(
        calendar_feeds.update()
        .where(calendar_feeds.c.owner_id == user_id, calendar_feeds.c.revoked_at.is_(None))
        .values(revoked_at=uow.now, updated_at=uow.now)
    )


async def revoke_feed(
    uow: UnitOfWork, actor: Actor, feed_id: int, *, if_match: str | None = None
) -> None:
    """DELETE revokes: the URL stops working at once."""
    done = await uow.conn.fetch_one(
        calendar_feeds.update()
        .where(
            calendar_feeds.c.id == feed_id,
            calendar_feeds.c.owner_id == actor.id,
            calendar_feeds.c.revoked_at.is_(None),
        )
        .values(revoked_at=uow.now, updated_at=uow.now)
        .returning(calendar_feeds.c.id)
    )
    if done is None:
        raise NotFound()


async def _resolve(conn: Connection, token: str) -> Row | None:
    """The live feed for a token, if its owner is still active (and a manager, for facilities)."""
    row = await conn.fetch_one(
        sa.select(calendar_feeds, users.c.role, users.c.is_active)
        .select_from(calendar_feeds.join(users, users.c.id == calendar_feeds.c.owner_id))
        .where(
            calendar_feeds.c.token_hash == hash_token(token), calendar_feeds.c.revoked_at.is_(None)
        )
    )
    if row is None or not row["is_active"]:
        return None
    if row["facility_id"] is not None and not Role(row["role"]).at_least(Role.MANAGER):
        return None
    return row


def _local(moment: datetime, tz: str) -> datetime:
    return moment.astimezone(ZoneInfo(tz))


def _shift_component(row: Row, *, with_user: bool) -> icalendar.Event:
    event = icalendar.Event()
    tz = row["timezone"] or "UTC"
    title = row["position"] or "Shift"
    if with_user:
        title = f"{title}: {row['username']}"
    event.add("uid", f"shift-{row['id']}@bms")
    event.add("summary", f"{title} ({row['facility_name']})")
    event.add("dtstart", _local(row["start"], tz))
    event.add("dtend", _local(row["end"], tz))
    event.add("dtstamp", row["updated_at"])
    event.add("last-modified", row["updated_at"])
    event.add("status", "CANCELLED" if row["status"] == "cancelled" else "CONFIRMED")
    if row["notes"]:
        event.add("description", row["notes"])
    event.add("location", row["facility_name"])
    return event


def _event_component(row: Row) -> icalendar.Event:
    event = icalendar.Event()
    tz = row["timezone"] or "UTC"
    event.add("uid", f"event-{row['id']}@bms")
    event.add("summary", row["title"])
    if row["all_day"]:
        start = _local(row["start"], tz).date()
        end = max(_local(row["end"], tz).date(), start + timedelta(days=1))
        event.add("dtstart", start)
        event.add("dtend", end)
    else:
        event.add("dtstart", _local(row["start"], tz))
        event.add("dtend", _local(row["end"], tz))
    event.add("dtstamp", row["updated_at"])
    event.add("last-modified", row["updated_at"])
    event.add("categories", [row["kind"]])
    if row["description"]:
        event.add("description", row["description"])
    if row["facility_name"]:
        event.add("location", row["facility_name"])
    return event


async def render_feed(conn: Connection, *, token: str, now: datetime) -> bytes | None:
    """The feed as iCalendar bytes with VTIMEZONEs for every zone used; None if not live."""
    feed = await _resolve(conn, token)
    if feed is None:
        return None
    lo, hi = now - timedelta(days=FEED_PAST_DAYS), now + timedelta(days=FEED_FUTURE_DAYS)
    shift_q = (
        sa.select(
            shifts, facilities.c.name.label("facility_name"), locations.c.timezone,
            users.c.username,
        )
        .select_from(
            shifts.join(facilities, facilities.c.id == shifts.c.facility_id)
            .join(locations, locations.c.id == facilities.c.location_id)
            .join(users, users.c.id == shifts.c.user_id)
        )
        .where(shifts.c.end >= lo, shifts.c.start <= hi)
        .order_by(shifts.c.start, shifts.c.id)
    )  # fmt: skip
    event_q = (
        sa.select(scheduled_events, facilities.c.name.label("facility_name"), locations.c.timezone)
        .select_from(
            scheduled_events.outerjoin(
                facilities, facilities.c.id == scheduled_events.c.facility_id
            ).outerjoin(locations, locations.c.id == facilities.c.location_id)
        )
        .where(scheduled_events.c.end >= lo, scheduled_events.c.start <= hi)
        .order_by(scheduled_events.c.start, scheduled_events.c.id)
    )
    facility_id = feed["facility_id"]
    if facility_id is not None:
        shift_q = shift_q.where(shifts.c.facility_id == facility_id)
        event_q = event_q.where(scheduled_events.c.facility_id == facility_id)
    else:
        owner = feed["owner_id"]
        shift_q = shift_q.where(shifts.c.user_id == owner)
        attending = sa.select(scheduled_event_attendees.c.event_id).where(
            scheduled_event_attendees.c.user_id == owner
        )
        event_q = event_q.where(scheduled_events.c.id.in_(attending))
    calendar = icalendar.Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", "BMS facility schedule" if facility_id else "BMS: my schedule")
    for row in await conn.fetch_all(shift_q):
        calendar.add_component(_shift_component(row, with_user=facility_id is not None))
    for row in await conn.fetch_all(event_q):
        calendar.add_component(_event_component(row))
    calendar.add_missing_timezones(first_date=(lo - timedelta(days=366)).date(),
                                   last_date=(hi + timedelta(days=366)).date())  # fmt: skip
    ical: bytes = calendar.to_ical()
    return ical


# What api/ declares the REST resource from (domain/resource.py).
RULES = ResourceRules(
    serialize=serialize,
    list_query=list_query,
    get=get_feed,
    create=create_feed,
    delete=revoke_feed,
)
