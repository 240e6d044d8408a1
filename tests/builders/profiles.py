"""Builders for profile tests: images made with Pillow, extra logins for one user."""

from __future__ import annotations

import io
from typing import Any

import httpx
from PIL import Image


def image_bytes(image_format: str = "PNG", size: tuple[int, int] = (8, 8)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buffer, format=image_format)
    return buffer.getvalue()


async def bearer_client(app: Any, user: dict[str, Any]) -> httpx.AsyncClient:
    """Another client for an existing user, authenticated by a fresh bearer token."""
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
    response = await client.post(
        "/api/auth/token/", json={"username": user["username"], "password": user["password"]}
    )
    assert response.status_code == 200, response.text
    client.headers["Authorization"] = f"Bearer {response.json()['access']}"
    return client


async def session_client(app: Any, user: dict[str, Any]) -> httpx.AsyncClient:
    """Another browser-like client for an existing user, logged in by session cookie."""
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
    token = (await client.get("/api/csrf/")).json()["csrfToken"]
    response = await client.post(
        "/api/auth/login/",
        json={"username": user["username"], "password": user["password"]},
        headers={"X-CSRFToken": token},
    )
    assert response.status_code == 200, response.text
    client.headers["X-CSRFToken"] = client.cookies["csrftoken"]
    return client
