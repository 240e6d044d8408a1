"""POST /api/send-email/ and GET /api/emails/<id>/"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.body import read_json
from api.context import get_store, path_id, require_actor
from api.responses import JSONResponse
from domain import emails
from domain.errors import NotFound


def _not_allowed(request: Request) -> Response:
    raise HTTPException(405)  # answered by api/errors.py


async def send_email(request: Request) -> Response:
    """202: the email is in the outbox; a worker sends it once the transaction committed."""
    actor = require_actor(request)
    if request.method != "POST":
        return _not_allowed(request)
    data = await read_json(request)
    async with get_store(request).unit_of_work(actor_id=actor.id) as uow:
        queued = await emails.send_email(uow, actor, data)
    return JSONResponse({"id": queued["id"], "status": "queued"}, 202)


async def email_detail(request: Request) -> Response:
    actor = require_actor(request)
    if request.method != "GET":
        return _not_allowed(request)
    async with get_store(request).connection() as conn:
        found = await emails.get_email(conn, actor, email_id=path_id(request))
    if found is None:
        raise NotFound()
    return JSONResponse(found)


routes = [
    Route("/send-email/", send_email, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
    Route("/emails/{id:int}/", email_detail, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
]
