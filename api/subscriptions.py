"""WebSocket subscription filters: the REST list filters of each topic's resource, reused."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from starlette.routing import BaseRoute

from api.crud import ResourceRoute
from domain.topics import TOPICS
from realtime.visibility import FilterParsers


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
