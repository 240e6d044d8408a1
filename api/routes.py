"""The /api/ routing table, assembled from one module per resource."""

from __future__ import annotations

from starlette.routing import BaseRoute

from api.auth import routes as auth
from api.openapi import routes as openapi
from api.resources import (
    api_keys,
    away,
    calendar,
    emails,
    facilities,
    incident_tickets,
    incident_types,
    locations,
    notifications,
    profiles,
    scheduled_events,
    service_tickets,
    shifts,
    time_entries,
    time_off_requests,
)

ROUTES: list[BaseRoute] = [
    *auth.routes,
    *openapi.routes,
    *api_keys.routes,
    *away.routes,
    *incident_types.routes,
    *incident_tickets.routes,
    *service_tickets.routes,
    *locations.routes,
    *facilities.routes,
    *profiles.routes,
    *notifications.routes,
    *emails.routes,
    *calendar.routes,
    *shifts.routes,
    *scheduled_events.routes,
    *time_entries.routes,
    *time_off_requests.routes,
]
