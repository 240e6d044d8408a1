"""Shared fixtures: every test runs against PostgreSQL + Redis and against the embedded
backends (SQLite, in-process pub/sub and tasks), on a database of its own."""

from __future__ import annotations

import asyncio
import itertools
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import argon2
import asyncpg
import httpx
import pytest
import redis
import redis.asyncio
import sqlalchemy as sa
from argon2 import PasswordHasher
from sqlalchemy.engine import make_url
from starlette.applications import Starlette

from api.app import create_app
from bms.settings import Settings, load_settings
from db import migrate
from db.store import Store
from db.tables import metadata
from domain.passwords import use_hasher
from domain.users import create_user

POSTGRES_URL = os.environ.get(
    "BMS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("BMS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
BACKENDS = [b for b in os.environ.get("BMS_TEST_BACKENDS", "postgres,sqlite").split(",") if b]
TEST_PASSWORD = "correct-horse-battery-staple"
_counter = itertools.count(1)
# Every Redis namespace of this run starts here, so the run can remove exactly its own keys.
RUN_NAMESPACE = f"bmstest:{uuid.uuid4().hex[:8]}"
# Real argon2, cheapest parameters: hashing dominated the suite's run time otherwise.
use_hasher(PasswordHasher.from_parameters(argon2.profiles.CHEAPEST))


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def create_postgres_database() -> str:
    """Create an empty `bms_test_<random>` database and return its URL."""
    name = f"bms_test_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(_asyncpg_dsn(POSTGRES_URL))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)


async def drop_postgres_database(url: str) -> None:
    name = make_url(url).database
    conn = await asyncpg.connect(_asyncpg_dsn(POSTGRES_URL))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@asynccontextmanager
async def migrated_postgres_database() -> AsyncIterator[str]:
    """A new database migrated to head, dropped afterwards: its URL."""
    url = await create_postgres_database()
    try:
        await asyncio.to_thread(migrate.upgrade, url)
        yield url
    finally:
        await drop_postgres_database(url)


@pytest.fixture(scope="session", autouse=True)
async def _remove_run_redis_keys() -> AsyncIterator[None]:
    """Delete the Redis keys (task streams, results) this run created, and only those."""
    yield
    client = redis.asyncio.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"{RUN_NAMESPACE}:*", count=500)]
        if keys:
            await client.delete(*keys)
    except redis.RedisError:
        pass  # Redis already gone: nothing of ours is left to delete
    finally:
        await client.aclose()


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="session")
async def database_url(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """A migrated database used by the whole session for this backend."""
    if backend == "postgres":
        async with migrated_postgres_database() as url:
            yield url
    else:
        path = tmp_path_factory.mktemp("sqlite") / "bms.sqlite3"
        url = f"sqlite+aiosqlite:///{path}"
        await asyncio.to_thread(migrate.upgrade, url)
        yield url


def make_settings(database_url: str, data_dir: Path, **overrides: Any) -> Settings:
    """Settings for a test run: Redis only with PostgreSQL, a namespace of its own."""
    is_postgres = make_url(database_url).get_backend_name() == "postgresql"
    values: dict[str, Any] = {
        "bms_env": "test",
        "database_url": database_url,
        "redis_url": REDIS_URL if is_postgres else "",
        "redis_namespace": f"{RUN_NAMESPACE}:{uuid.uuid4().hex[:12]}",
        "secret_key": "test-secret-key-" + "x" * 32,
        "data_dir": data_dir,
        "allowed_origins": ["http://dashboard.example"],
        # Tests drive recurring jobs themselves (tests/tasks); none fire behind their back.
        "scheduler_embedded": False,
    }
    values.update(overrides)
    return load_settings(**values)


@pytest.fixture(scope="session")
def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_settings(database_url, tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[Starlette]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


async def empty_tables(store: Store) -> None:
    """Delete every row; ids keep growing (the realtime hub relies on that)."""
    names = [table.name for table in reversed(metadata.sorted_tables)]
    async with store.connection() as conn:
        if store.is_postgres:
            await conn.execute("TRUNCATE " + ", ".join(f'"{n}"' for n in names) + " CASCADE")
        else:
            for name in names:
                await conn.execute(sa.text(f'DELETE FROM "{name}"'))


@pytest.fixture
async def store(app: Starlette) -> AsyncIterator[Store]:
    store: Store = app.state.store
    yield store
    await empty_tables(store)


@pytest.fixture
async def client(app: Starlette, store: Store) -> AsyncIterator[httpx.AsyncClient]:
    async with _client_for(app) as anonymous:
        yield anonymous


def _client_for(app: Starlette, **kwargs: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver", **kwargs
    )


MakeUser = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def make_user(store: Store) -> MakeUser:
    """Create a user (profile dict plus its "password") with any role and fields."""

    async def factory(role: str = "operator", **fields: Any) -> dict[str, Any]:
        n = next(_counter)
        fields.setdefault("username", f"{role}{n}")
        fields.setdefault("email", f"{fields['username']}@example.com")
        password = fields.pop("password", TEST_PASSWORD)
        async with store.unit_of_work(actor_id=None) as uow:
            profile = await create_user(uow, role=role, password=password, **fields)
        return {**profile, "password": password}

    return factory


@pytest.fixture
async def login(app: Starlette, make_user: MakeUser) -> AsyncIterator[Callable[..., Any]]:
    """Return a bearer-authenticated client for a new user of a role (`.user` is its profile)."""
    clients: list[httpx.AsyncClient] = []

    async def factory(role: str = "operator", **fields: Any) -> httpx.AsyncClient:
        user = await make_user(role, **fields)
        authed = _client_for(app)
        clients.append(authed)
        response = await authed.post(
            "/api/auth/token/", json={"username": user["username"], "password": user["password"]}
        )
        assert response.status_code == 200, response.text
        authed.headers["Authorization"] = f"Bearer {response.json()['access']}"
        authed.user = user  # type: ignore[attr-defined]
        return authed

    yield factory
    for authed in clients:
        await authed.aclose()


@pytest.fixture
async def session_login(app: Starlette, make_user: MakeUser) -> AsyncIterator[Callable[..., Any]]:
    """Return a browser-like client logged in by session cookie, sending X-CSRFToken."""
    clients: list[httpx.AsyncClient] = []

    async def factory(role: str = "operator", **fields: Any) -> httpx.AsyncClient:
        user = await make_user(role, **fields)
        browser = _client_for(app)
        clients.append(browser)
        token = (await browser.get("/api/csrf/")).json()["csrfToken"]
        response = await browser.post(
            "/api/auth/login/",
            json={"username": user["username"], "password": user["password"]},
            headers={"X-CSRFToken": token},
        )
        assert response.status_code == 200, response.text
        browser.headers["X-CSRFToken"] = browser.cookies["csrftoken"]
        browser.user = user  # type: ignore[attr-defined]
        return browser

    yield factory
    for browser in clients:
        await browser.aclose()
