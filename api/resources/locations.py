"""/api/locations/"""

from __future__ import annotations

from databases.core import Connection

from api.crud import Resource, resource_routes
from api.listing import ListSpec
from api.openapi.meta import ResourceDoc
from db.tables import locations as t
from domain import locations
from domain.actors import Actor


async def _get(conn: Connection, actor: Actor, location_id: int) -> dict | None:
    return await locations.get_location(conn, location_id=location_id)


RESOURCE = Resource(
    path="/locations",
    spec=ListSpec(
        search=(t.c.name, t.c.code, t.c.address),
        ordering={"name": t.c.name, "code": t.c.code, "created_at": t.c.created_at, "id": t.c.id},
        default_ordering=("name",),
        id_column=t.c.id,
    ),
    list_query=lambda actor: locations.list_query(),
    serialize=locations.serialize,
    get=_get,
    create=locations.create_location,
    update=locations.update_location,
    delete=locations.delete_location,
    doc=ResourceDoc(input=locations.LocationIn),
)

routes = resource_routes(RESOURCE)
