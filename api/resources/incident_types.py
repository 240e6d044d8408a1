"""/api/incident-types/"""

from __future__ import annotations

from databases.core import Connection

from api.crud import Resource, resource_routes
from api.listing import ListSpec
from api.openapi.meta import ResourceDoc
from db.tables import incident_types as t
from domain import incident_types
from domain.actors import Actor
from domain.tickets import priority_rank


async def _get(conn: Connection, actor: Actor, type_id: int) -> dict | None:
    return await incident_types.get_incident_type(conn, type_id=type_id)


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
    list_query=lambda actor: incident_types.list_query(),
    serialize=incident_types.serialize,
    get=_get,
    create=incident_types.create_incident_type,
    update=incident_types.update_incident_type,
    delete=incident_types.delete_incident_type,
    csv=True,
    doc=ResourceDoc(input=incident_types.IncidentTypeIn),
)

routes = resource_routes(RESOURCE)
