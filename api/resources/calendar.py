"""/api/calendar/<token>.ics (the secret URL is the credential) and /api/calendar-feeds/."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.context import get_store
from api.crud import Resource, resource_routes
from api.listing import ListSpec
from api.openapi.meta import ResourceDoc
from db.tables import calendar_feeds as t
from domain import calendar_feeds
from domain.errors import NotFound

FEED_CACHE_SECS = 300


async def feed(request: Request) -> Response:
    """Calendar apps poll this without cookies or headers; unknown or revoked tokens are 404."""
    store = get_store(request)
    async with store.connection() as conn:
        body = await calendar_feeds.render_feed(
            conn, token=request.path_params["token"], now=store.clock()
        )
    if body is None:
        raise NotFound()
    return Response(
        body,
        media_type="text/calendar; charset=utf-8",
        headers={
            "Cache-Control": f"private, max-age={FEED_CACHE_SECS}",
            "Content-Disposition": 'inline; filename="bms.ics"',
        },
    )


RESOURCE = Resource(
    path="/calendar-feeds",
    spec=ListSpec(
        ordering={"created_at": t.c.created_at, "id": t.c.id},
        default_ordering=("-created_at",),
        id_column=t.c.id,
    ),
    rules=calendar_feeds.RULES,
    doc=ResourceDoc(
        input=calendar_feeds.FeedIn,
        description='Own feeds. POST `{}` (personal) or `{"facility": id}` (managers) answers '
        "once with `token` and `url` (`/api/calendar/<token>.ics`); DELETE revokes the URL.",
    ),
)

routes = [Route("/calendar/{token}.ics", feed, methods=["GET"]), *resource_routes(RESOURCE)]
