"""/api/facilities/"""

from __future__ import annotations

from databases.core import Connection

from api.crud import Resource, SiteScope, resource_routes
from api.listing import Filter, ListSpec
from api.openapi.meta import ResourceDoc
from db.tables import facilities as t
from domain import facilities
from domain.actors import Actor


async def _get(conn: Connection, actor: Actor, facility_id: int) -> dict | None:
    return await facilities.get_facility(conn, facility_id=facility_id)


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
    list_query=lambda actor: facilities.list_query(),
    serialize=facilities.serialize,
    get=_get,
    create=facilities.create_facility,
    update=facilities.update_facility,
    delete=facilities.delete_facility,
    site=SiteScope(t.c.location_id, "location"),
    doc=ResourceDoc(input=facilities.FacilityIn),
)

routes = resource_routes(RESOURCE)
