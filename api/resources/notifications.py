"""/api/notifications/ (own only) and /api/notifications/mark-all-read/"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.context import get_store, require_actor
from api.crud import Resource, resource_routes
from api.listing import Filter, ListSpec
from api.openapi.meta import ResourceDoc
from api.responses import no_content
from db.tables import notifications as t
from domain import notifications


async def _mark_all_read(request: Request) -> Response:
    actor = require_actor(request)
    if request.method != "POST":
        raise HTTPException(405)  # answered by api/errors.py
    async with get_store(request).unit_of_work(actor_id=actor.id) as uow:
        await notifications.mark_all_read(uow, actor)
    return no_content()


RESOURCE = Resource(
    path="/notifications",
    spec=ListSpec(
        filters=(Filter("read", t.c.read, kind="bool"), Filter("kind", t.c.kind, kind="str")),
        search=(t.c.title, t.c.body),
        ordering={"created_at": t.c.created_at, "id": t.c.id, "read": t.c.read},
        default_ordering=("-created_at",),
        id_column=t.c.id,
    ),
    rules=notifications.RULES,
    extra_routes=(
        Route(
            "/notifications/mark-all-read/",
            _mark_all_read,
            methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        ),
    ),
    doc=ResourceDoc(
        input=notifications.NotificationPatch,
        read_only={"kind": str, "title": str, "body": str, "link": str},
        description='Own notifications only; the server creates them. PATCH `{"read": true}`.',
    ),
)

routes = resource_routes(RESOURCE)
