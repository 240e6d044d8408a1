"""/api/incident-types/"""

from __future__ import annotations

from api.crud import Resource, resource_routes
from api.listing import ListSpec
from api.openapi.meta import ResourceDoc
from db.tables import incident_types as t
from domain import incident_types
from domain.tickets import priority_rank

RESOURCE = Resource(
    path="/incident-types",
    spec=ListSpec(
        search=(t.c.name,),
        ordering={
            "name": t.c.name,
            "default_priority": priority_rank(t.c.default_priority),
            "created_at": t.c.created_at,
            "updated_at": t.c.updated_at,
            "id": t.c.id,
        },
        default_ordering=("name",),
        id_column=t.c.id,
    ),
    rules=incident_types.RULES,
    csv=True,
    doc=ResourceDoc(input=incident_types.IncidentTypeIn),
)

routes = resource_routes(RESOURCE)
