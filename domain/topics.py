"""Every realtime topic, named by the domain module whose writes emit its events."""

from __future__ import annotations

from domain import (
    facilities,
    incident_tickets,
    incident_types,
    locations,
    notifications,
    scheduled_events,
    service_tickets,
    shifts,
    time_entries,
    time_off,
    users,
)

# A module that calls `uow.emit(TOPIC, ...)` is listed here, so clients can subscribe to it.
TOPICS = frozenset(
    module.TOPIC
    for module in (
        facilities,
        incident_tickets,
        incident_types,
        locations,
        notifications,
        scheduled_events,
        service_tickets,
        shifts,
        time_entries,
        time_off,
        users,
    )
)
# Events only the owner receives, whatever their role.
OWNER_ONLY_TOPICS = frozenset({notifications.TOPIC})
