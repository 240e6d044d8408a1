"""`<ticket>/comments/` and `<ticket>/history/`, shared by both ticket kinds."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from databases.core import Connection
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.body import read_json
from api.context import get_store, path_id, require_actor
from api.listing import ListSpec, paginate
from api.responses import JSONResponse
from db.tables import history as history_table
from db.tables import ticket_comments
from domain import comments, history

TicketRequirer = Callable[..., Awaitable[dict[str, Any]]]

# Threads read oldest first; `?ordering=-id` turns them round.
COMMENTS_SPEC = ListSpec(
    ordering={"id": ticket_comments.c.id, "created_at": ticket_comments.c.created_at},
    default_ordering=("id",),
)
HISTORY_SPEC = ListSpec(
    ordering={"id": history_table.c.id, "at": history_table.c.at},
    default_ordering=("id",),
)


def thread_routes(path: str, *, subject: str, require_ticket: TicketRequirer) -> list[Route]:
    """Routes for a ticket kind at `path` (e.g. `/incident-tickets`), subject = its topic."""

    async def _ticket(conn: Connection, request: Request) -> int:
        ticket_id = path_id(request)
        await require_ticket(conn, ticket_id=ticket_id)  # 404 for an unknown ticket
        return ticket_id

    async def comments_endpoint(request: Request) -> Response:
        actor = require_actor(request)
        store = get_store(request)
        if request.method == "GET":
            async with store.connection() as conn:
                ticket_id = await _ticket(conn, request)
                page = await paginate(
                    conn,
                    comments.list_query(subject=subject, subject_id=ticket_id),
                    spec=COMMENTS_SPEC,
                    params=request.query_params,
                    url=request.url,
                    serialize=comments.serialize,
                )
            return JSONResponse(page)
        data = await read_json(request)
        async with store.unit_of_work(actor_id=actor.id) as uow:
            created = await comments.add_comment(
                uow, actor, subject=subject, subject_id=path_id(request), data=data
            )
        return JSONResponse(created, 201)

    async def history_endpoint(request: Request) -> Response:
        require_actor(request)
        async with get_store(request).connection() as conn:
            ticket_id = await _ticket(conn, request)
            page = await paginate(
                conn,
                history.list_query(subject=subject, subject_id=ticket_id),
                spec=HISTORY_SPEC,
                params=request.query_params,
                url=request.url,
                serialize=history.serialize,
            )
        return JSONResponse(page)

    return [
        Route(f"{path}/{{id:int}}/comments/", comments_endpoint, methods=["GET", "POST"]),
        Route(f"{path}/{{id:int}}/history/", history_endpoint, methods=["GET"]),
    ]
