"""/api/facilities/"""

from __future__ import annotations

from api.crud import Resource, SiteScope, resource_routes
from api.listing import Filter, ListSpec
from api.openapi.meta import ResourceDoc
from db.tables import facilities as t
from domain import facilities

RESOURCE = Resource(
    path="/facilities",
    spec=ListSpec(
        filters=(
            Filter("location", t.c.location_id),
            Filter("kind", t.c.kind, kind="choice", choices=facilities.KINDS),
            Filter("status", t.c.status, kind="choice", choices=facilities.STATUSES),
        ),
        search=(t.c.name, t.c.description),
        ordering={
            "name": t.c.name,
            "location": t.c.location_id,
            "kind": t.c.kind,
            "status": t.c.status,
            "created_at": t.c.created_at,
            "updated_at": t.c.updated_at,
            "id": t.c.id,
        },
        default_ordering=("name",),
        id_column=t.c.id,
    ),
    rules=facilities.RULES,
    site=SiteScope(t.c.location_id, "location"),
    doc=ResourceDoc(input=facilities.FacilityIn),
)

routes = resource_routes(RESOURCE)
