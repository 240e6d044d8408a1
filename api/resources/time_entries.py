"""/api/time-entries/ (private rows: operators see only their own)"""

from __future__ import annotations

from datetime import date, datetime

from api.crud import Resource, resource_routes
from api.listing import Filter, ListSpec, shared_query
from api.openapi.meta import ResourceDoc
from db.tables import time_entries as t
from domain import time_entries

# Managers' list (every entry) is built once per shape; its totals are counted once per
# newest time-entries event: every change to an entry emits one, the links a shift's or a
# ticket's delete nulls included (`time_entries.detach_from`), and no filter reads
# `reviewed_by`, which a user's delete nulls.
shared_query(time_entries.EVERY_ENTRY, changes_on=time_entries.TOPIC)

RESOURCE = Resource(
    path="/time-entries",
    spec=ListSpec(
        filters=(
            Filter("user", t.c.user_id),
            Filter("status", t.c.status, kind="choice", choices=time_entries.STATUSES),
            Filter("date_after", t.c.date, kind="date", op="gte"),
            Filter("date_before", t.c.date, kind="date", op="lte"),
            Filter("shift", t.c.shift_id),
        ),
        search=(t.c.description,),
        ordering={
            "date": t.c.date,
            "start": t.c.start,
            "end": t.c.end,
            "user": t.c.user_id,
            "status": t.c.status,
            "created_at": t.c.created_at,
            "updated_at": t.c.updated_at,
            "id": t.c.id,
        },
        default_ordering=("-date",),
        id_column=t.c.id,
    ),
    rules=time_entries.RULES,
    csv=True,
    doc=ResourceDoc(
        input=time_entries.TimeEntryIn,
        read_only={
            "duration_minutes": int,
            "reviewed_by": int | None,
            "reviewed_at": datetime | None,
        },
        output_types={"user": int, "date": date},
        description="Private: operators see only their own entries (others are 404). `user` is "
        "the creator unless a manager sets it. The owner edits while draft/submitted and moves "
        "draft→submitted (rejected→draft to rework); a manager moves submitted→approved/rejected.",
    ),
)

routes = resource_routes(RESOURCE)
