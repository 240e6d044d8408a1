"""Builders for ticket tests: incident types and tickets of both kinds through the API, and
an incident type inserted directly for plan tests that seed thousands of rows in SQL."""

from __future__ import annotations

import itertools
from typing import Any

import httpx

_n = itertools.count(1)


async def make_incident_type(client: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    """Create an incident type (needs a manager client)."""
    body = {"name": f"Type {next(_n)}", **overrides}
    response = await client.post("/api/incident-types/", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def make_incident(
    client: httpx.AsyncClient, *, incident_type: int, **overrides: Any
) -> dict[str, Any]:
    """Open an incident ticket of `incident_type` (operator client or above)."""
    body = {"title": f"Incident {next(_n)}", "incident_type": incident_type, **overrides}
    response = await client.post("/api/incident-tickets/", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def make_service_ticket(client: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    """Open a service ticket (operator client or above)."""
    body = {"title": f"Service {next(_n)}", "category": "repair", **overrides}
    response = await client.post("/api/service-tickets/", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def move(client: httpx.AsyncClient, url: str, status: str, **fields: Any) -> httpx.Response:
    """PATCH a ticket's status (plus any fields)."""
    return await client.patch(url, json={"status": status, **fields})


async def insert_incident_type(raw: Any, name: str) -> int:
    """Insert an incident type on a raw asyncpg connection; its id."""
    type_id: int = await raw.fetchval(
        "INSERT INTO incident_types (name, created_at, updated_at) "
        "VALUES ($1, now(), now()) RETURNING id",
        name,
    )
    return type_id
