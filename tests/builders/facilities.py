"""Builders for facility tests: a location and a facility through the API (manager client)."""

from __future__ import annotations

import itertools
from typing import Any

import httpx

_n = itertools.count(1)


async def make_location(client: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    n = next(_n)
    body = {"name": f"Site {n}", "code": f"S{n}", "timezone": "Europe/London", **overrides}
    response = await client.post("/api/locations/", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def make_facility(client: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    """Create a facility; a fresh location unless `location` is given."""
    if "location" not in overrides:
        overrides["location"] = (await make_location(client))["id"]
    body = {"name": f"Studio {next(_n)}", "kind": "studio", **overrides}
    response = await client.post("/api/facilities/", json=body)
    assert response.status_code == 201, response.text
    return response.json()
