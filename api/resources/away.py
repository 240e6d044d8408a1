"""/api/away/?date=YYYY-MM-DD&location=N: who is away that day (names only)."""

from __future__ import annotations

from datetime import date

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.context import get_store, require_actor
from api.listing import Filter
from api.responses import JSONResponse
from db.tables import profiles
from domain.away import away_on
from domain.errors import ValidationFailed

_LOCATION = Filter("location", profiles.c.location_id)


async def away(request: Request) -> Response:
    """Any signed-in user (a wall's read key too): approved time off covering the date."""
    require_actor(request)
    raw_day = request.query_params.get("date")
    try:
        day = date.fromisoformat(raw_day) if raw_day else request.app.state.store.clock().date()
    except ValueError:
        raise ValidationFailed.on("date", "Date has wrong format. Use YYYY-MM-DD.") from None
    raw_location = request.query_params.get("location")
    try:
        location = _LOCATION.parse(raw_location) if raw_location else None
    except ValueError as exc:
        raise ValidationFailed.on("location", str(exc)) from None
    async with get_store(request).connection() as conn:
        people = await away_on(conn, day=day, location_id=location)
    return JSONResponse({"count": len(people), "next": None, "previous": None, "results": people})


routes = [Route("/away/", away, methods=["GET"])]
