"""/api/time-off-requests/ (private rows: operators see only their own)"""

from __future__ import annotations

from datetime import datetime

from api.crud import Resource, resource_routes
from api.listing import Filter, ListSpec, shared_query
from api.openapi.meta import ResourceDoc
from db.tables import time_off_requests as t
from domain import time_off

# Managers' list (every request) is built once per shape; its totals are counted once per
# newest time-off event: every change to a request emits one (its user cannot be deleted
# while it exists, and no filter reads `reviewed_by`, the one column another table's delete
# changes).
shared_query(time_off.EVERY_REQUEST, changes_on=time_off.TOPIC)

RESOURCE = Resource(
    path="/time-off-requests",
    spec=ListSpec(
        filters=(
            Filter("user", t.c.user_id),
            Filter("status", t.c.status, kind="choice", choices=time_off.STATUSES),
            Filter("kind", t.c.kind, kind="choice", choices=time_off.KINDS),
            Filter("start_after", t.c.start_date, kind="date", op="gte"),
            Filter("start_before", t.c.start_date, kind="date", op="lte"),
        ),
        search=(t.c.reason,),
        ordering={
            "created_at": t.c.created_at,
            "updated_at": t.c.updated_at,
            "start_date": t.c.start_date,
            "end_date": t.c.end_date,
            "user": t.c.user_id,
            "status": t.c.status,
            "kind": t.c.kind,
            "id": t.c.id,
        },
        default_ordering=("-created_at",),
        id_column=t.c.id,
    ),
    rules=time_off.RULES,
    doc=ResourceDoc(
        input=time_off.TimeOffIn,
        read_only={
            "user": int,
            "reviewed_by": int | None,
            "reviewed_at": datetime | None,
            "conflicting_shifts": list[int],
        },
        description="Private: operators see only their own requests (others are 404). The "
        "requester edits or cancels while pending; a manager approves or denies (with "
        "`review_note`). `conflicting_shifts`: the requester's non-cancelled shifts that "
        "overlap the dates, as days at each shift's facility.",
    ),
)

routes = resource_routes(RESOURCE)
