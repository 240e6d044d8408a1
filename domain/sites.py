"""API keys restricted to one site: which rows, details and events they see.

Facility-bound resources (incident and service tickets, shifts, scheduled events) are
visible when their facility belongs to the site or they have none; facilities when they
belong to it. Everything else (locations, profiles, ...) is unaffected. Such keys are
read-only, so only reads need the rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from databases.core import Connection

from db.tables import facilities
from domain.actors import Actor

# Topic (and REST resource) → the field of its representation that places it at a site.
SITE_FIELDS = {
    "incident-tickets": "facility",
    "service-tickets": "facility",
    "shifts": "facility",
    "scheduled-events": "facility",
    "facilities": "location",
}


async def facilities_of(conn: Connection, *, location_id: int) -> frozenset[int]:
    rows = await conn.fetch_all(
        sa.select(facilities.c.id).where(facilities.c.location_id == location_id)
    )
    return frozenset(row[0] for row in rows)


def site_condition(column: sa.ColumnElement[Any], *, field: str, location_id: int) -> Any:
    """The WHERE clause of a list seen by a key restricted to `location_id`."""
    if field == "location":
        return column == location_id
    at_site = sa.select(facilities.c.id).where(facilities.c.location_id == location_id)
    return sa.or_(column.is_(None), column.in_(at_site))


def site_allows(actor: Actor, topic: str, representation: Mapping[str, Any]) -> bool:
    """May this actor see this representation of `topic` (its site restriction only)?"""
    field = SITE_FIELDS.get(topic)
    if actor.location_id is None or field is None or field not in representation:
        return True  # unrestricted, not site-bound, or a deletion (only {"id"})
    value = representation[field]
    if field == "location":
        return bool(value == actor.location_id)
    return value is None or value in (actor.site_facilities or frozenset())
