"""/api/api-keys/: create (the secret is in that response only), list, revoke (DELETE)."""

from __future__ import annotations

from datetime import datetime

from api.crud import Resource, resource_routes
from api.listing import Filter, ListSpec
from api.openapi.meta import ResourceDoc
from db.tables import api_keys as t
from domain import api_keys

RESOURCE = Resource(
    path="/api-keys",
    spec=ListSpec(
        filters=(
            Filter("user", t.c.user_id),
            Filter("scope", t.c.scope, kind="choice", choices=("read", "read-write")),
        ),
        search=(t.c.name, t.c.prefix),
        ordering={"created_at": t.c.created_at, "name": t.c.name, "id": t.c.id},
        default_ordering=("-created_at",),
        id_column=t.c.id,
    ),
    rules=api_keys.RULES,
    doc=ResourceDoc(
        input=api_keys.ApiKeyIn,
        read_only={"prefix": str, "last_used_at": datetime | None},
        description=(
            "Long-lived keys for screens, scripts and the CLI: `Authorization: Bearer <key>` "
            "on REST and /ws/ (browsers: WebSocket subprotocol `bearer.<key>`). The create "
            "response alone carries `key`, the secret. Own keys; an admin manages all. "
            "A `read` key is refused unsafe methods (403). DELETE revokes the key and closes "
            "its sockets. An API key cannot create keys. `location` (read keys only) narrows what "
            "the key sees to that site's facility-bound rows, over REST and /ws/."
        ),
    ),
)

routes = resource_routes(RESOURCE)
