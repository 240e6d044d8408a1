"""/, /wall/ and /static/: shipped files, cache headers, the wall's CSP; /api/away/."""

from __future__ import annotations

import re

import httpx

from api import web
from tests.builders.time_off import make_time_off


async def test_wall_page_has_a_strict_csp_and_versioned_assets(client: httpx.AsyncClient) -> None:
    response = await client.get("/wall/")
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe" not in csp
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["referrer-policy"] == "no-referrer"
    assets = re.findall(r'(?:src|href)="(/static/v/[^"]+)"', response.text)
    assert {a.rsplit("/", 1)[1] for a in assets} == {"wall.css", "wall-main.js"}
    for asset in assets:
        served = await client.get(asset)
        assert served.status_code == 200
        assert served.headers["cache-control"] == "public, max-age=31536000, immutable"
    js = await client.get(f"/static/v/{web.version()}/wall-main.js")
    assert js.headers["content-type"].startswith("text/javascript")
    assert 'from "./bms-realtime.js"' in js.text  # relative: resolves inside one version


async def test_other_versions_are_served_uncached_and_unknown_files_are_404(
    client: httpx.AsyncClient,
) -> None:
    stale = await client.get("/static/v/0123456789abcdef/wall.css")
    assert stale.status_code == 200 and stale.headers["cache-control"] == "no-cache"
    assert (await client.get(f"/static/v/{web.version()}/nope.js")).status_code == 404
    assert (await client.get(f"/static/v/{web.version()}/wall.html")).status_code == 404
    assert (await client.get(f"/static/v/{web.version()}/..%2Fweb.py")).status_code == 404


async def test_browser_client_has_a_stable_url(client: httpx.AsyncClient) -> None:
    response = await client.get("/static/bms-realtime.js")
    assert response.status_code == 200 and response.headers["cache-control"] == "no-cache"
    assert "export function connect" in response.text and response.headers["etag"]


async def test_root_points_people_to_the_docs_and_the_wall(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert 'href="/api/docs/"' in response.text and 'href="/wall/"' in response.text


async def test_away_lists_names_only_of_approved_time_off(login) -> None:
    manager = await login("manager")
    away = await login("operator", first_name="Ada", last_name="Lovelace")
    pending = await login("operator")
    request = await make_time_off(away, reason="private reason", start_date="2026-12-02")
    await make_time_off(pending, start_date="2026-12-02")
    approved = await manager.patch(
        f"/api/time-off-requests/{request['id']}/", json={"status": "approved"}
    )
    assert approved.status_code == 200, approved.text
    viewer = await login("viewer")
    listed = await viewer.get("/api/away/", params={"date": "2026-12-03"})
    assert listed.status_code == 200
    assert listed.json()["results"] == [{"user": away.user["user"], "name": "Ada Lovelace"}]
    assert "private reason" not in listed.text and "vacation" not in listed.text
    assert (await viewer.get("/api/away/", params={"date": "2026-12-04"})).json()["count"] == 0
    assert (await viewer.get("/api/away/", params={"date": "12/03"})).status_code == 400
    assert (await viewer.get("/api/away/", params={"location": "x"})).status_code == 400


async def test_away_needs_a_signed_in_user(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/away/")).status_code == 401
