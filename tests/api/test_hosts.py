"""ALLOWED_HOSTS: another Host gets 400; probes and scrapes answer whatever host they use."""

from __future__ import annotations

from pathlib import Path

import httpx

from api.app import create_app
from tests.conftest import make_settings


async def test_only_allowed_hosts_are_served_except_ops_endpoints(
    database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(database_url, tmp_path, allowed_hosts=["bms.example.com"])
    app = create_app(settings, components=[])
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://web:8000") as http:
            assert (await http.get("/api/locations/")).status_code == 400
            assert (await http.get("/healthz")).status_code == 200
            assert (await http.get("/metrics")).status_code == 200
            served = await http.get("/api/locations/", headers={"Host": "bms.example.com"})
            assert served.status_code == 401  # past the host check: asks for credentials
