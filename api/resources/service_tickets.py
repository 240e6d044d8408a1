"""/api/service-tickets/ with its comments and history."""

from __future__ import annotations

from datetime import datetime

from api.crud import Resource, SiteScope, resource_routes
from api.listing import Filter, ListSpec, shared_query
from api.openapi.meta import ResourceDoc
from api.resources.ticket_threads import thread_routes
from db.tables import service_tickets as t
from domain import service_tickets
from domain.tickets import PRIORITIES, priority_rank

PATH = "/service-tickets"
# Every role sees every ticket: list pages are built once per shape, totals per version.
shared_query(service_tickets.EVERY_TICKET, changes_on=service_tickets.TOPIC)


RESOURCE = Resource(
    path=PATH,
    spec=ListSpec(
        filters=(
            Filter("status", t.c.status, kind="choice", choices=service_tickets.STATUSES),
            Filter("priority", t.c.priority, kind="choice", choices=PRIORITIES),
            Filter("category", t.c.category, kind="choice", choices=service_tickets.CATEGORIES),
            Filter("facility", t.c.facility_id),
            Filter("assigned_to", t.c.assigned_to),
            Filter("requested_by", t.c.requested_by),
            Filter("due_before", t.c.due_date, kind="date", op="lte"),
            Filter("due_after", t.c.due_date, kind="date", op="gte"),
        ),
        search=(t.c.number, t.c.title, t.c.description),
        search_text=t.c.search_text,
        search_index="ix_service_tickets_search_trgm",  # PostgreSQL (migrations 0012, 0017)
        ordering={
            "number": t.c.number,
            "title": t.c.title,
            "priority": priority_rank(t.c.priority),
            "status": t.c.status,
            "category": t.c.category,
            "due_date": t.c.due_date,
            "completed_at": t.c.completed_at,
            "created_at": t.c.created_at,
            "updated_at": t.c.updated_at,
            "id": t.c.id,
        },
        default_ordering=("-created_at",),
        id_column=t.c.id,
    ),
    rules=service_tickets.RULES,
    extra_routes=thread_routes(
        PATH,
        subject=service_tickets.TOPIC,
        require_ticket=service_tickets.require_service_ticket,
    ),
    csv=True,
    site=SiteScope(t.c.facility_id, "facility"),
    doc=ResourceDoc(
        input=service_tickets.ServiceTicketIn,
        read_only={"number": str, "requested_by": int, "completed_at": datetime | None},
        description="Setting `assigned_to` on a `new` ticket moves it to `assigned`.",
    ),
)

routes = resource_routes(RESOURCE)
