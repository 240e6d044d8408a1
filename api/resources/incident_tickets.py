"""/api/incident-tickets/ with its comments and history."""

from __future__ import annotations

from datetime import datetime

from api.crud import Resource, SiteScope, resource_routes
from api.listing import Filter, ListSpec, shared_query
from api.openapi.meta import ResourceDoc
from api.resources.ticket_threads import thread_routes
from db.tables import incident_tickets as t
from domain import incident_tickets
from domain.tickets import PRIORITIES, Priority, priority_rank

PATH = "/incident-tickets"
# Every role sees every ticket: one base query, so list pages are built once per shape.
shared_query(incident_tickets.EVERY_TICKET, changes_on=incident_tickets.TOPIC)


RESOURCE = Resource(
    path=PATH,
    spec=ListSpec(
        filters=(
            Filter("status", t.c.status, kind="choice", choices=incident_tickets.STATUSES),
            Filter("priority", t.c.priority, kind="choice", choices=PRIORITIES),
            Filter("facility", t.c.facility_id),
            Filter("incident_type", t.c.incident_type_id),
            Filter("assigned_to", t.c.assigned_to),
            Filter("reported_by", t.c.reported_by),
            Filter("on_air_impact", t.c.on_air_impact, kind="bool"),
            Filter("created_after", t.c.created_at, kind="datetime", op="gte"),
            Filter("created_before", t.c.created_at, kind="datetime", op="lte"),
        ),
        search=(t.c.number, t.c.title, t.c.description),
        search_text=t.c.search_text,
        search_index="ix_incident_tickets_search_trgm",  # PostgreSQL (migrations 0011, 0017)
        ordering={
            "number": t.c.number,
            "title": t.c.title,
            "priority": priority_rank(t.c.priority),
            "status": t.c.status,
            "occurred_at": t.c.occurred_at,
            "created_at": t.c.created_at,
            "updated_at": t.c.updated_at,
            "id": t.c.id,
        },
        default_ordering=("-created_at",),
        id_column=t.c.id,
    ),
    rules=incident_tickets.RULES,
    extra_routes=thread_routes(
        PATH,
        subject=incident_tickets.TOPIC,
        require_ticket=incident_tickets.require_incident_ticket,
    ),
    csv=True,
    site=SiteScope(t.c.facility_id, "facility"),
    doc=ResourceDoc(
        input=incident_tickets.IncidentTicketIn,
        read_only={
            "number": str,
            "reported_by": int,
            "acknowledged_at": datetime | None,
            "resolved_at": datetime | None,
            "closed_at": datetime | None,
        },
        output_types={"priority": Priority, "occurred_at": datetime},
        description="Status moves: open → acknowledged → in_progress → resolved → closed; "
        "resolved → in_progress (reopen); a manager may close from any status. Entering "
        "`resolved` needs a `resolution`. `priority` defaults to the type's default priority.",
    ),
)

routes = resource_routes(RESOURCE)
