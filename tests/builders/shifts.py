"""Builders for shift tests: a shift (and its facility) through the API (manager client)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

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
