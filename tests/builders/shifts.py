"""Builders for shift tests: a shift (and its facility) through the API (manager client), or
a row written straight to the database (no event, no checks) for setups the API refuses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from databases.core import Connection

from db.tables import shifts
from domain import local_days
from tests.builders.facilities import make_facility

BASE = datetime(2026, 12, 1, 8, tzinfo=UTC)


def at(hours: float) -> str:
    """An ISO datetime `hours` after BASE (08:00 UTC on 1 December 2026)."""
    return (BASE + timedelta(hours=hours)).isoformat()


async def shift_body(client: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    """A valid shift body: BASE to BASE+8h; a fresh facility unless `facility` is given."""
    if "facility" not in overrides:
        overrides["facility"] = (await make_facility(client))["id"]
    return {"position": "MCR operator", "start": at(0), "end": at(8), **overrides}


async def make_shift(client: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    """Create a shift; `user` is required in `overrides`."""
    response = await client.post("/api/shifts/", json=await shift_body(client, **overrides))
    assert response.status_code == 201, response.text
    return response.json()


async def insert_shift(
    conn: Connection,
    *,
    user_id: int,
    facility_id: int,
    start: datetime,
    hours: float = 8,
    **extra: Any,
) -> int:
    """A shift row written directly, with the local days BMS keeps for it; returns its id."""
    values = {
        "user_id": user_id,
        "facility_id": facility_id,
        "start": start,
        "end": start + timedelta(hours=hours),
        "status": "scheduled",
        "created_at": start,
        "updated_at": start,
        **extra,
    }
    values.update(await local_days.shift_columns(conn, values))
    return int(await conn.execute(shifts.insert().values(**values)))
