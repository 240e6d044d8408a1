"""A small world with every resource (and an image), and a snapshot of all it serves.

Shared by the backup and export/import tests: seed one database through the API, move the
data somehow, then compare every REST representation before and after.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette

from api.app import create_app
from db import migrate
from db.store import Store
from domain.users import create_user
from tests.builders.facilities import make_facility
from tests.builders.profiles import image_bytes
from tests.builders.scheduled_events import make_scheduled_event
from tests.builders.shifts import make_shift
from tests.builders.tickets import make_incident, make_incident_type, make_service_ticket, move
from tests.builders.time_entries import make_time_entry
from tests.builders.time_off import make_time_off
from tests.conftest import (
    TEST_PASSWORD,
    create_postgres_database,
    drop_postgres_database,
    make_settings,
)

LISTS = [
    "profiles",
    "locations",
    "facilities",
    "shifts",
    "incident-types",
    "incident-tickets",
    "service-tickets",
    "time-entries",
    "scheduled-events",
    "time-off-requests",
    "notifications",
]


async def new_database(backend: str, folder: Path, *, revision: str | None = "head") -> str:
    """An empty database of `backend` (migrated to `revision` unless None)."""
    if backend == "postgres":
        url = await create_postgres_database()
    else:
        url = f"sqlite+aiosqlite:///{folder / f'{uuid.uuid4().hex[:8]}.sqlite3'}"
    if revision is not None:
        await asyncio.to_thread(migrate.upgrade, url, revision)
    return url


async def drop_database(url: str) -> None:
    if url.startswith("postgresql"):
        await drop_postgres_database(url)
    else:
        Path(url.split("///", 1)[1]).unlink(missing_ok=True)


@asynccontextmanager
async def running_app(url: str, data_dir: Path) -> AsyncIterator[Starlette]:
    application = create_app(make_settings(url, data_dir))
    async with application.router.lifespan_context(application):
        yield application


def client_for(app: Starlette, token: str | None = None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver", headers=headers
    )


async def add_user(app: Starlette, role: str, username: str) -> tuple[dict[str, Any], str]:
    store: Store = app.state.store
    async with store.unit_of_work(actor_id=None) as uow:
        profile = await create_user(
            uow, role=role, username=username, password=TEST_PASSWORD, first_name=username.title()
        )
    async with client_for(app) as anonymous:
        response = await anonymous.post(
            "/api/auth/token/", json={"username": username, "password": TEST_PASSWORD}
        )
    assert response.status_code == 200, response.text
    return profile, response.json()["access"]


async def seed(app: Starlette) -> str:
    """Create one of everything through the API; return the admin's bearer token."""
    admin, admin_token = await add_user(app, "admin", "ada")
    operator, operator_token = await add_user(app, "operator", "otto")
    async with client_for(app, admin_token) as boss, client_for(app, operator_token) as op:
        facility = await make_facility(boss, description="Main studio")
        kind = await make_incident_type(boss, color="#ff0000", default_priority="high")
        incident = await make_incident(
            op, incident_type=kind["id"], facility=facility["id"], assigned_to=admin["user"]
        )
        assert (
            await move(op, f"/api/incident-tickets/{incident['id']}/", "acknowledged")
        ).status_code == 200
        comment = await op.post(
            f"/api/incident-tickets/{incident['id']}/comments/", json={"body": "On it ✓"}
        )
        assert comment.status_code == 201, comment.text
        ticket = await make_service_ticket(op, facility=facility["id"], due_date="2026-12-24")
        await boss.patch(
            f"/api/service-tickets/{ticket['id']}/", json={"assigned_to": operator["user"]}
        )
        await make_shift(boss, user=operator["user"], facility=facility["id"])
        await make_scheduled_event(boss, facility=facility["id"], attendees=[operator["user"]])
        await make_time_entry(op)
        await make_time_off(op, reason="Family")
        image = await op.post(
            f"/api/profiles/{operator['id']}/image/",
            files={"image": ("me.png", image_bytes(), "image/png")},
        )
        assert image.status_code == 200, image.text
    return admin_token


async def snapshot(app: Starlette, token: str) -> dict[str, Any]:
    """Every list (and ticket comments/history, and image bytes) as the admin sees it."""
    seen: dict[str, Any] = {}
    async with client_for(app, token) as admin:
        for name in LISTS:
            response = await admin.get(f"/api/{name}/", params={"page_size": 200})
            assert response.status_code == 200, response.text
            seen[name] = response.json()["results"]
        for kind in ("incident-tickets", "service-tickets"):
            for ticket in seen[kind]:
                for part in ("comments", "history"):
                    response = await admin.get(f"/api/{kind}/{ticket['id']}/{part}/")
                    seen[f"{kind}/{ticket['id']}/{part}"] = response.json()["results"]
        for profile in seen["profiles"]:
            if profile["profile_image"]:
                response = await admin.get(profile["profile_image"])
                assert response.status_code == 200
                seen[profile["profile_image"]] = response.content
    return seen
