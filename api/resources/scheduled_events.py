"""/api/scheduled-events/"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from api.crud import Resource, SiteScope, resource_routes
from api.listing import Filter, ListSpec, shared_query
from api.openapi.meta import ResourceDoc
from db.tables import scheduled_event_attendees
from db.tables import scheduled_events as t
from domain import scheduled_events

# Pages built once per shape. Totals are counted per page: deleting a user removes attendee
# rows (the `attendee` filter) without a scheduled-events event, so no versioned total.
shared_query(scheduled_events.EVERY_EVENT)


@dataclass(frozen=True)
class AttendeeFilter(Filter):
    """`?attendee=3,5`: events any of these users attends."""

    def compare(self, value: Any, *, many: bool = False) -> sa.ColumnElement[bool]:
        return scheduled_events.has_attendee(super().compare(value, many=many))


RESOURCE = Resource(
    path="/scheduled-events",
    spec=ListSpec(
        filters=(
            Filter("facility", t.c.facility_id),
            Filter("kind", t.c.kind, kind="choice", choices=scheduled_events.KINDS),
            Filter("start_after", t.c.start, kind="datetime", op="gte"),
            Filter("start_before", t.c.start, kind="datetime", op="lte"),
            Filter("end_after", t.c.end, kind="datetime", op="gte"),
            Filter("end_before", t.c.end, kind="datetime", op="lte"),
            Filter("series", t.c.series_id),
            AttendeeFilter("attendee", scheduled_event_attendees.c.user_id, field="attendees"),
        ),
        search=(t.c.title, t.c.description),
        ordering={
            "start": t.c.start,
            "end": t.c.end,
            "title": t.c.title,
            "kind": t.c.kind,
            "facility": t.c.facility_id,
            "created_at": t.c.created_at,
            "updated_at": t.c.updated_at,
            "id": t.c.id,
        },
        default_ordering=("start",),
        id_column=t.c.id,
    ),
    rules=scheduled_events.RULES,
    prepare_create=scheduled_events.precheck_create,
    site=SiteScope(t.c.facility_id, "facility"),
    doc=ResourceDoc(
        input=scheduled_events.ScheduledEventIn,
        read_only={"created_by": int | None, "series": int | None},
        create_only={"recurrence": str | None},
        description="`attendees`: user ids. `recurrence` (create only): an RFC 5545 RRULE; the "
        "event then starts a series whose occurrences the recurring job creates.",
    ),
)

routes = resource_routes(RESOURCE)
