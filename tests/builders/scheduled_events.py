"""Builders for scheduled event tests: an event created through the API (manager client)."""

from __future__ import annotations

from typing import Any

import httpx


def event_body(**overrides: Any) -> dict[str, Any]:
    return {
        "title": "Election night",
        "kind": "broadcast",
        "start": "2026-12-01T18:00:00Z",
        "end": "2026-12-02T02:00:00Z",
        **overrides,
    }


async def make_scheduled_event(client: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    response = await client.post("/api/scheduled-events/", json=event_body(**overrides))
    assert response.status_code == 201, response.text
    return response.json()
