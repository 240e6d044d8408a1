"""The WebSocket's HTTP side: subscription filters from the REST lists, and plain GETs of /ws/."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from api.crud import ResourceRoute
from api.responses import error_response
from domain.topics import TOPICS
from realtime.endpoint import WS_PATH
from realtime.visibility import FilterParsers

UPGRADE_REQUIRED = "This is a WebSocket endpoint: connect with Upgrade: websocket."


def filter_parsers(routes: Iterable[BaseRoute]) -> FilterParsers:
    """topic → exact-match filter name → (data field, parser), from the resources' list specs.

    Range filters (`start_after`, ...) have no single field to test an event against, so a
    socket may not use them.
    """
    found: dict[str, dict[str, tuple[str, Callable[[str], Any]]]] = {}
    for route in routes:
        if not isinstance(route, ResourceRoute) or route.detail:
            continue
        topic = route.resource.path.strip("/")
        if topic not in TOPICS:
            continue
        found[topic] = {
            spec.name: (spec.field or spec.name, spec.parse)
            for spec in route.resource.spec.filters
            if spec.op == "eq"
        }
    return found


async def ws_over_http(request: Request) -> Response:
    """A plain HTTP request to /ws/ (a browser tab, a fuzzer): 426, as RFC 9110 says."""
    return error_response(UPGRADE_REQUIRED, 426, headers={"Upgrade": "websocket"})


routes = [Route(WS_PATH, ws_over_http, methods=["GET"])]
