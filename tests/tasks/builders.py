"""Row builders for task tests: sites, series, shifts and incidents inserted directly."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

from db.store import Store
from db.tables import facilities, incident_tickets, incident_types, locations, series
from tests.builders.shifts import insert_shift

_n = itertools.count(1)
T0 = datetime(2026, 3, 1, tzinfo=UTC)


async def make_facility(store: Store, *, timezone: str = "Europe/London") -> int:
    n = next(_n)
    async with store.connection() as conn:
        location_id = await conn.execute(
            locations.insert().values(
                name=f"Loc {n}", code=f"L{n}", timezone=timezone, created_at=T0, updated_at=T0
            )
        )
        return await conn.execute(
            facilities.insert().values(
                name=f"Fac {n}", location_id=location_id, kind="studio", created_at=T0,
                updated_at=T0,
            )
        )  # fmt: skip


async def make_series(
    store: Store,
    *,
    rrule: str,
    dtstart: datetime,
    template: dict[str, Any],
    kind: str = "shift",
    duration_secs: int = 8 * 3600,
    timezone: str = "Europe/London",
) -> int:
    async with store.connection() as conn:
        return await conn.execute(
            series.insert().values(
                kind=kind, rrule=rrule, dtstart=dtstart, duration_secs=duration_secs,
                timezone=timezone, template=template, created_at=T0, updated_at=T0,
            )
        )  # fmt: skip


async def make_shift(
    store: Store, *, user_id: int, facility_id: int, start: datetime, hours: float = 8, **extra: Any
) -> int:
    async with store.connection() as conn:
        return await insert_shift(
            conn, user_id=user_id, facility_id=facility_id, start=start, hours=hours,
            created_at=T0, updated_at=T0, **extra,
        )  # fmt: skip


async def make_incident(
    store: Store, *, reporter: int, created_at: datetime, facility_id: int | None = None,
    priority: str = "critical", on_air_impact: bool = False, status: str = "open",
) -> int:  # fmt: skip
    n = next(_n)
    async with store.connection() as conn:
        type_id = await conn.execute(
            incident_types.insert().values(name=f"Type {n}", created_at=T0, updated_at=T0)
        )
        return await conn.execute(
            incident_tickets.insert().values(
                number=f"INC-{n:06d}", title=f"Incident {n}", incident_type_id=type_id,
                facility_id=facility_id, priority=priority, status=status,
                on_air_impact=on_air_impact, reported_by=reporter, occurred_at=created_at,
                created_at=created_at, updated_at=created_at,
            )
        )  # fmt: skip
