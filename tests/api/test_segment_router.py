"""SegmentRouter answers every request exactly as Starlette's Router over the same routes."""

from __future__ import annotations

import re

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import BaseRoute, Match, Mount, Route, Router
from starlette.types import Receive, Scope, Send

from api.routes import ROUTES
from api.segment_router import SegmentRouter


def _stub_routes() -> list[BaseRoute]:
    """The /api/ table's paths and methods (and a catch-all first segment), answering
    which route took the request."""

    async def endpoint(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"{request.scope['route'].path} {request.path_params}")

    async def mounted(scope: Scope, receive: Receive, send: Send) -> None:
        await PlainTextResponse(f"mount {scope['path']}")(scope, receive, send)

    routes: list[BaseRoute] = []
    for route in ROUTES:
        if isinstance(route, Mount):
            routes.append(Mount(route.path, app=mounted))
        elif isinstance(route, Route):
            routes.append(Route(route.path, endpoint, methods=route.methods))
    routes.insert(5, Route("/{anything}/x/", endpoint))  # matches under any first segment
    return routes


def _paths() -> list[str]:
    paths = ["/", "/nothing/", "/nothing", "/docs/assets/app.js", "/calendar/abc.ics", "/a/x/"]
    for route in ROUTES:
        path = re.sub(r"\{[^}]*\}", "7", getattr(route, "path", "/"))
        paths += [path, path.rstrip("/"), path + "extra/", path.replace("7", "seven")]
    return paths


@pytest.mark.parametrize("method", ["GET", "POST", "PATCH"])
async def test_every_path_goes_where_starlettes_router_sends_it(method) -> None:
    routes = _stub_routes()
    plain = Router(routes)
    segmented = SegmentRouter(routes)
    mounted = [Router([Mount("/api", app=router)]) for router in (plain, segmented)]
    clients = [
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
        for app in mounted
    ]
    for path in _paths():
        expected, found = [await client.request(method, "/api" + path) for client in clients]
        assert (found.status_code, found.headers.get("location"), found.text) == (
            expected.status_code,
            expected.headers.get("location"),
            expected.text,
        ), path
    for client in clients:
        await client.aclose()


async def test_routes_added_later_are_routed() -> None:
    async def endpoint(request: Request) -> PlainTextResponse:
        return PlainTextResponse("late")

    router = SegmentRouter([])
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=router), base_url="http://t")
    assert (await client.get("/late/")).status_code == 404
    router.routes.append(Route("/late/", endpoint))
    assert (await client.get("/late/")).text == "late"
    await client.aclose()


def test_the_api_mount_is_tried_first_and_no_other_route_takes_api_paths(settings) -> None:
    """The app's own routes: /api/ first (most requests), which is only safe while no
    route after it matches a path under /api/."""
    from api.app import create_app

    routes = create_app(settings, components=[]).router.routes
    assert isinstance(routes[0], Mount) and routes[0].path == "/api"
    samples = [re.sub(r"\{[^}]*\}", "7", getattr(route, "path", "/")) for route in routes[1:]]
    for route in routes[1:]:
        for sample in samples:
            for path in (f"/api{sample}", f"/api{sample}".rstrip("/")):
                scope = {"type": "http", "method": "GET", "path": path, "root_path": ""}
                assert route.matches(scope)[0] == Match.NONE, (route, path)
