"""Builders for time entry tests: a valid body and an entry created through the API."""

from __future__ import annotations

from typing import Any

import httpx


def entry_body(**overrides: Any) -> dict[str, Any]:
    """A 90-minute entry on 1 December 2026 (UTC)."""
    return {
        "date": "2026-12-01",
        "start": "2026-12-01T09:00:00Z",
        "end": "2026-12-01T10:30:00Z",
        "description": "Playout checks",
        **overrides,
    }


async def make_time_entry(client: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    response = await client.post("/api/time-entries/", json=entry_body(**overrides))
    assert response.status_code == 201, response.text
    return response.json()
