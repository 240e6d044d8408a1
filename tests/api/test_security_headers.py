"""Security headers on every response (issue #10 §5, contract section 5)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from api.app import create_app
from tests.conftest import make_settings

BASE = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
}


@pytest.mark.parametrize(
    ("path", "status"), [("/api/locations/", 401), ("/healthz", 200), ("/api/nope/", 404)]
)
async def test_every_response_carries_the_headers(client, path, status) -> None:
    response = await client.get(path)
    assert response.status_code == status
    for name, value in BASE.items():
        assert response.headers[name] == value
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert "strict-transport-security" not in response.headers


async def test_routes_keep_their_own_policy(client) -> None:
    docs = await client.get("/api/docs/")
    csp = docs.headers["content-security-policy"]
    assert "script-src 'self' 'sha256-" in csp and "frame-ancestors 'none'" in csp
    assert len(docs.headers.get_list("content-security-policy")) == 1
    wall = await client.get("/wall/")
    assert wall.headers["referrer-policy"] == "no-referrer"  # the wall's own choice
    assert wall.headers["x-frame-options"] == "DENY"


async def test_hsts_only_behind_https(database_url: str, tmp_path: Path) -> None:
    app = create_app(make_settings(database_url, tmp_path, cookie_secure=True))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://x") as http,
    ):
        response = await http.get("/healthz")
    assert response.headers["strict-transport-security"] == "max-age=31536000"
