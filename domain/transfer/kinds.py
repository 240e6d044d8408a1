"""Per resource: the export query and serializer, and how an imported row maps to columns.

Kinds are listed in dependency order: a row only refers to kinds listed before it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from databases.interfaces import Record as Row
from pydantic import AwareDatetime

from db.tables import (
    facilities,
    incident_tickets,
    incident_types,
    locations,
    notifications,
    scheduled_events,
    service_tickets,
    shifts,
    ticket_comments,
    time_entries,
    time_off_requests,
)
from domain import comments as comments_domain
from domain import facilities as facilities_domain
from domain import incident_tickets as incidents_domain
from domain import incident_types as types_domain
from domain import locations as locations_domain
from domain import notifications as notifications_domain
from domain import profiles as profiles_domain
from domain import scheduled_events as events_domain
from domain import service_tickets as service_domain
from domain import shifts as shifts_domain
from domain import time_entries as entries_domain
from domain import time_off as time_off_domain
from domain.schemas import Schema

USERS = "users"  # references to people: a user id of the file, or a username


@dataclass(frozen=True)
class Kind:
    """One line type. `columns` maps REST fields to columns where the names differ."""

    name: str
    table: sa.Table
    query: Callable[[], sa.Select[Any]]
    serialize: Callable[[Row], dict[str, Any]]
    schema: type[Schema] | None = None
    columns: dict[str, str] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)  # REST field -> kind name or USERS
    # Read-only fields an import keeps (status stamps, authors), with their types.
    extras: dict[str, Any] = field(default_factory=dict)
    key: tuple[str, ...] = ()  # natural key: an existing row with these values is reused
    ticket_counter: str | None = None  # number column fed by this counter


STAMPS: dict[str, Any] = {"created_at": AwareDatetime, "updated_at": AwareDatetime}


def _with_ticket(serialize: Callable[[Row], dict[str, Any]]) -> Callable[[Row], dict[str, Any]]:
    def with_ticket(row: Row) -> dict[str, Any]:
        return {**serialize(row), "ticket": row["subject_id"]}

    return with_ticket


def _notification(row: Row) -> dict[str, Any]:
    return {**notifications_domain.serialize(row), "user": row["user_id"]}


def _comments(name: str, *, ticket_kind: str, subject: str) -> Kind:
    """The comments on one kind of ticket: the same table, told apart by their subject."""
    return Kind(
        name,
        ticket_comments,
        lambda: sa.select(ticket_comments).where(ticket_comments.c.subject == subject),
        _with_ticket(comments_domain.serialize),
        schema=comments_domain.CommentIn,
        columns={"author": "author_id", "ticket": "subject_id"},
        refs={"author": USERS, "ticket": ticket_kind},
        extras={"author": int, "ticket": int, "created_at": AwareDatetime},
    )


KINDS: list[Kind] = [
    Kind(
        "locations",
        locations,
        locations_domain.list_query,
        locations_domain.serialize,
        schema=locations_domain.LocationIn,
        extras=STAMPS,
        key=("name",),
    ),
    Kind(
        "profiles",  # written by load.py's own code: two tables, credentials, images
        sa.Table("profiles", sa.MetaData()),
        profiles_domain.list_query,
        profiles_domain.serialize,
        schema=profiles_domain.ProfileIn,
        refs={"location": "locations"},
        extras=STAMPS,
        key=("username",),
    ),
    Kind(
        "facilities",
        facilities,
        facilities_domain.list_query,
        facilities_domain.serialize,
        schema=facilities_domain.FacilityIn,
        columns={"location": "location_id"},
        refs={"location": "locations"},
        extras=STAMPS,
        key=("location", "name"),
    ),
    Kind(
        "incident-types",
        incident_types,
        types_domain.list_query,
        types_domain.serialize,
        schema=types_domain.IncidentTypeIn,
        extras=STAMPS,
        key=("name",),
    ),
    Kind(
        "shifts",
        shifts,
        shifts_domain.list_query,
        shifts_domain.serialize,
        schema=shifts_domain.ShiftIn,
        columns={"user": "user_id", "facility": "facility_id"},
        refs={"user": USERS, "facility": "facilities"},
        extras=STAMPS,
    ),
    Kind(
        "scheduled-events",  # attendees go to their own table (load.py)
        scheduled_events,
        events_domain.list_query,
        events_domain.serialize,
        schema=events_domain.ScheduledEventIn,
        columns={"facility": "facility_id"},
        refs={"facility": "facilities", "created_by": USERS},
        extras={**STAMPS, "created_by": int | None},
    ),
    Kind(
        "incident-tickets",
        incident_tickets,
        incidents_domain.list_query,
        incidents_domain.serialize,
        schema=incidents_domain.IncidentTicketIn,
        columns={"incident_type": "incident_type_id", "facility": "facility_id"},
        refs={
            "incident_type": "incident-types",
            "facility": "facilities",
            "assigned_to": USERS,
            "reported_by": USERS,
        },
        extras={
            **STAMPS,
            "number": str | None,
            "reported_by": int,
            "acknowledged_at": AwareDatetime | None,
            "resolved_at": AwareDatetime | None,
            "closed_at": AwareDatetime | None,
        },
        key=("number",),
        ticket_counter=incidents_domain.COUNTER,
    ),
    Kind(
        "service-tickets",
        service_tickets,
        service_domain.list_query,
        service_domain.serialize,
        schema=service_domain.ServiceTicketIn,
        columns={"facility": "facility_id"},
        refs={"facility": "facilities", "assigned_to": USERS, "requested_by": USERS},
        extras={
            **STAMPS,
            "number": str | None,
            "requested_by": int,
            "completed_at": AwareDatetime | None,
        },
        key=("number",),
        ticket_counter=service_domain.COUNTER,
    ),
    _comments(
        "incident-ticket-comments", ticket_kind="incident-tickets", subject=incidents_domain.TOPIC
    ),
    _comments(
        "service-ticket-comments", ticket_kind="service-tickets", subject=service_domain.TOPIC
    ),
    Kind(
        "time-entries",
        time_entries,
        lambda: sa.select(time_entries),
        entries_domain.serialize,
        schema=entries_domain.TimeEntryIn,
        columns={
            "user": "user_id",
            "shift": "shift_id",
            "incident_ticket": "incident_ticket_id",
            "service_ticket": "service_ticket_id",
        },
        refs={
            "user": USERS,
            "shift": "shifts",
            "incident_ticket": "incident-tickets",
            "service_ticket": "service-tickets",
            "reviewed_by": USERS,
        },
        extras={**STAMPS, "reviewed_by": int | None, "reviewed_at": AwareDatetime | None},
    ),
    Kind(
        "time-off-requests",
        time_off_requests,
        time_off_domain._query,
        time_off_domain.serialize,
        schema=time_off_domain.TimeOffIn,
        columns={"user": "user_id"},
        refs={"user": USERS, "reviewed_by": USERS},
        extras={
            **STAMPS,
            "user": int,
            "reviewed_by": int | None,
            "reviewed_at": AwareDatetime | None,
        },
    ),
    Kind(
        "notifications",
        notifications,
        lambda: sa.select(notifications),
        _notification,
        columns={"user": "user_id"},
        refs={"user": USERS},
        extras={
            **STAMPS,
            "user": int,
            "kind": str,
            "title": str,
            "body": str,
            "link": str,
            "read": bool,
        },
    ),
]

BY_NAME = {kind.name: kind for kind in KINDS}
IMAGE_TYPE = "profile-images"  # {"profile": id, "name": "x.png", "content_base64": "..."}
CREDENTIALS_TYPE = "user-credentials"  # {"username", "password_hash"}: passwords survive a move
DATE = dt.date
