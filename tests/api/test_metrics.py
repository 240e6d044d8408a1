"""/metrics: requests are labelled by the template of the route that served them."""

from __future__ import annotations

import re
from typing import Any


def _count(metrics: str, method: str, route: str, status: str) -> float:
    labels = f'method="{method}",route="{re.escape(route)}",status="{status}"'
    found = re.search(rf"^bms_http_requests_total\{{{labels}\}} (\S+)$", metrics, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def test_api_requests_are_labelled_by_route_template(login: Any, client: Any) -> None:
    viewer = await login("viewer")
    before = (await client.get("/metrics")).text
    assert (await viewer.get("/api/locations/")).status_code == 200
    assert (await viewer.get("/api/locations/987654/")).status_code == 404
    assert (await viewer.get("/api/no-such-thing/")).status_code == 404
    after = (await client.get("/metrics")).text
    for method, route, status in [
        ("GET", "/api/locations/", "200"),
        ("GET", "/api/locations/{id:int}/", "404"),  # one series for every id
        ("GET", "unmatched", "404"),
    ]:
        assert _count(after, method, route, status) == _count(before, method, route, status) + 1
    assert "/api/locations/987654/" not in after
