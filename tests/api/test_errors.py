"""Unexpected errors answer 500 with a request id and never a traceback."""

from __future__ import annotations

import httpx
from starlette.routing import Route

from api.app import create_app


async def test_unhandled_error_is_500_without_traceback(settings) -> None:
    app = create_app(settings, components=[])

    async def boom(request):
        raise RuntimeError("secret internal detail")

    app.router.routes.insert(0, Route("/api/boom/", boom))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get("/api/boom/", headers={"X-Request-ID": "req-42"})
    assert response.status_code == 500
    assert response.json() == {"detail": "Internal server error.", "request_id": "req-42"}
    assert "secret" not in response.text and "Traceback" not in response.text


async def test_method_not_allowed_is_drf_shaped(login) -> None:
    viewer = await login("viewer")
    response = await viewer.request("PATCH", "/api/locations/")
    assert response.status_code == 405
    assert response.json() == {"detail": 'Method "PATCH" not allowed.'}
