"""Builders for time-off tests: a request created through the API by its requester."""

from __future__ import annotations

from typing import Any

import httpx


async def make_time_off(client: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    body = {"kind": "vacation", "start_date": "2026-12-01", "end_date": "2026-12-03", **overrides}
    response = await client.post("/api/time-off-requests/", json=body)
    assert response.status_code == 201, response.text
    return response.json()
