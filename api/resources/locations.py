"""/api/locations/"""

from __future__ import annotations

from api.crud import Resource, resource_routes
from api.listing import ListSpec
from api.openapi.meta import ResourceDoc
from db.tables import locations as t
from domain import locations

RESOURCE = Resource(
    path="/locations",
    spec=ListSpec(
        search=(t.c.name, t.c.code, t.c.address),
        ordering={"name": t.c.name, "code": t.c.code, "created_at": t.c.created_at, "id": t.c.id},
        default_ordering=("name",),
        id_column=t.c.id,
    ),
    rules=locations.RULES,
    doc=ResourceDoc(input=locations.LocationIn),
)

routes = resource_routes(RESOURCE)
