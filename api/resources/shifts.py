"""/api/shifts/"""

from __future__ import annotations

from api.crud import Resource, SiteScope, resource_routes
from api.listing import Filter, ListSpec, shared_query
from api.openapi.meta import ResourceDoc
from db.tables import shifts as t
from domain import shifts

# Every role sees every shift: list pages are built once per shape, totals per version.
shared_query(shifts.EVERY_SHIFT, changes_on=shifts.TOPIC)

RESOURCE = Resource(
    path="/shifts",
    spec=ListSpec(
        filters=(
            Filter("user", t.c.user_id),
            Filter("facility", t.c.facility_id),
            Filter("status", t.c.status, kind="choice", choices=shifts.STATUSES),
            Filter("series", t.c.series_id),
            Filter("start_after", t.c.start, kind="datetime", op="gte"),
            Filter("start_before", t.c.start, kind="datetime", op="lte"),
            Filter("end_after", t.c.end, kind="datetime", op="gte"),
            Filter("end_before", t.c.end, kind="datetime", op="lte"),
        ),
        search=(t.c.position, t.c.notes),
        ordering={
            "start": t.c.start,
            "end": t.c.end,
            "user": t.c.user_id,
            "facility": t.c.facility_id,
            "status": t.c.status,
            "position": t.c.position,
            "created_at": t.c.created_at,
            "updated_at": t.c.updated_at,
            "id": t.c.id,
        },
        default_ordering=("start",),
        id_column=t.c.id,
    ),
    rules=shifts.RULES,
    prepare_create=shifts.precheck_create,
    csv=True,
    site=SiteScope(t.c.facility_id, "facility"),
    doc=ResourceDoc(
        input=shifts.ShiftIn,
        read_only={"series": int | None},
        create_only={"recurrence": str | None},
        description="`end` after `start`, at most 24 h; overlapping another non-cancelled "
        "shift of the same user: 409. `recurrence` (create only): an RFC 5545 RRULE such as "
        "`FREQ=WEEKLY;BYDAY=MO,TU;COUNT=10`; the shift then starts a series.",
    ),
)

routes = resource_routes(RESOURCE)
