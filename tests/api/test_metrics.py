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


async def test_each_status_of_a_route_counts_apart(login: Any, client: Any) -> None:
    """The series of a route are kept per method, route and status: repeats count in the
    right one."""
    viewer = await login("viewer")
    detail = "/api/locations/{id:int}/"
    before = (await client.get("/metrics")).text
    location = (await login("admin")).post(
        "/api/locations/", json={"name": "Metrics", "code": "MET", "timezone": "UTC"}
    )
    url = f"/api/locations/{(await location).json()['id']}/"
    for path in (url, "/api/locations/987654/", url, url, "/api/locations/987654/"):
        await viewer.get(path)
    await viewer.delete(url)  # a viewer may not: 403
    after = (await client.get("/metrics")).text
    assert _count(after, "GET", detail, "200") == _count(before, "GET", detail, "200") + 3
    assert _count(after, "GET", detail, "404") == _count(before, "GET", detail, "404") + 2
    assert _count(after, "DELETE", detail, "403") == _count(before, "DELETE", detail, "403") + 1
