"""DATABASE_READ_URL: list and detail reads from the read pool, read-your-writes, writes never.

The "replica" here is a second, empty migrated database on the same server: a row the
primary has and it lacks shows which pool answered. It is not a standby (no replay
position), so a client that wrote reads from the primary until its cookie expires: the
documented time-based fallback. A client without the cookie reads from the replica.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import httpx
import pytest
import sqlalchemy as sa
from starlette.applications import Starlette

from api.app import create_app
from api.replica import READ_AFTER_COOKIE
from db import store as db_store
from db.store import Store
from tests.builders.tickets import make_incident, make_incident_type
from tests.conftest import POSTGRES_URL, _asyncpg_dsn, make_settings, migrated_postgres_database

WINDOW_SECS = 10
TICKETS = "/api/incident-tickets/"


@pytest.fixture(scope="module")
async def replica_url(backend: str) -> AsyncIterator[str]:
    if backend != "postgres":
        pytest.skip("a read replica is a PostgreSQL setting")
    async with migrated_postgres_database() as url:
        yield url


@pytest.fixture(scope="module")
async def app(
    replica_url: str, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Starlette]:
    """The app with DATABASE_READ_URL set (overrides conftest's `app` in this module)."""
    settings = make_settings(
        database_url,
        tmp_path_factory.mktemp("data"),
        database_read_url=replica_url,
        database_read_after_write_secs=WINDOW_SECS,
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


async def _count(url: str, table: str) -> int:
    conn = await asyncpg.connect(_asyncpg_dsn(url))
    try:
        return int(await conn.fetchval(f"SELECT count(*) FROM {table}"))
    finally:
        await conn.close()


def _advance(store: Store, secs: float) -> None:
    before = store.clock
    store.clock = lambda: before() + timedelta(seconds=secs)


@pytest.fixture
def clock_restored(store: Store):
    original = store.clock
    yield
    store.clock = original


async def test_reads_follow_the_client_and_writes_stay_on_the_primary(
    login, store: Store, replica_url: str, clock_restored
) -> None:
    manager = await login("manager")
    viewer = await login("viewer")
    kind = await make_incident_type(manager)
    ticket = await make_incident(manager, incident_type=kind["id"])
    assert READ_AFTER_COOKIE in manager.cookies  # the write's response set it
    # Right after its write the manager reads from the primary: list, detail and CSV.
    assert (await manager.get(TICKETS)).json()["count"] == 1
    assert (await manager.get(f"{TICKETS}{ticket['id']}/")).status_code == 200
    csv_rows = (await manager.get(f"{TICKETS}?format=csv")).text.splitlines()
    assert len(csv_rows) == 2  # header and the ticket
    # The viewer wrote only its login, before the clock moved past the window: replica.
    _advance(store, WINDOW_SECS + 1)
    assert (await viewer.get(TICKETS)).json()["count"] == 0
    assert (await viewer.get(f"{TICKETS}{ticket['id']}/")).status_code == 404
    assert (await viewer.get(f"{TICKETS}?format=csv")).text == ""
    # Once the manager's window passed, the replica (without the ticket) answers it too.
    assert (await manager.get(TICKETS)).json()["count"] == 0
    # A new write: primary again for this client only.
    await manager.patch(f"{TICKETS}{ticket['id']}/", json={"title": "Changed"})
    found = await manager.get(f"{TICKETS}{ticket['id']}/")
    assert found.status_code == 200 and found.json()["title"] == "Changed"
    assert (await viewer.get(TICKETS)).json()["count"] == 0
    # Not a row of any write reached the read database.
    for table in ("users", "incident_types", "incident_tickets", "events", "history"):
        assert await _count(replica_url, table) == 0, table


async def test_a_forged_or_stale_cookie_reads_from_the_replica(
    login, store: Store, clock_restored
) -> None:
    manager = await login("manager")
    kind = await make_incident_type(manager)
    await make_incident(manager, incident_type=kind["id"])
    genuine = manager.cookies[READ_AFTER_COOKIE]
    position, expires, signature = genuine.split(".")
    forged = f"{position}.{int(expires) + 3600}.{signature}"
    for value, count in ((forged, 0), ("not-a-cookie", 0), ("1.2", 0), (genuine, 1)):
        manager.cookies.clear()
        manager.cookies.set(READ_AFTER_COOKIE, value)
        assert (await manager.get(TICKETS)).json()["count"] == count, value


async def test_a_replica_past_the_write_serves_the_writer(
    login, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The replay-position comparison, with the stand-in's WAL position standing in for a
    standby's replay position: the cluster's insert position is past every write made (the
    replica then answers the writer), '0/1' before all of them (the primary does)."""
    manager = await login("manager")
    kind = await make_incident_type(manager)
    await make_incident(manager, incident_type=kind["id"])
    monkeypatch.setattr(db_store, "_REPLAYED", sa.text("SELECT pg_current_wal_insert_lsn()::text"))
    assert (await manager.get(TICKETS)).json()["count"] == 0
    monkeypatch.setattr(db_store, "_REPLAYED", sa.text("SELECT '0/1'::text"))
    assert (await manager.get(TICKETS)).json()["count"] == 1


def test_wal_positions_compare_in_wal_order() -> None:
    positions = ["0/1", "0/FFFFFFFF", "1/0", "16/B374D848", "16/B374D849", "FF/0"]
    assert sorted(positions, key=db_store.lsn) == positions
    assert db_store.lsn(None) is None


async def test_the_read_pool_is_its_own_connections(store: Store, replica_url: str) -> None:
    """Reads hold a connection of the read database, the unit of work one of the primary."""
    async with store.read_connection() as conn:
        assert await conn.fetch_val("SELECT current_database()") == _name(replica_url)
    async with store.unit_of_work(actor_id=None) as uow:
        assert await uow.conn.fetch_val("SELECT current_database()") != _name(replica_url)
    async with store.connection() as conn:
        assert await conn.fetch_val("SELECT current_database()") != _name(replica_url)


def _name(url: str) -> str:
    return url.rsplit("/", 1)[1]


async def _set_connections(url: str, *, allowed: bool) -> None:
    """Let the replica take connections, or refuse them and end those it has (an outage)."""
    name = _name(url)
    conn = await asyncpg.connect(_asyncpg_dsn(POSTGRES_URL))
    try:
        await conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(allowed).lower()}')
        if not allowed:
            await conn.execute(
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE datname = $1",
                name,
            )
    finally:
        await conn.close()


async def test_reads_go_to_the_primary_while_the_replica_is_down_and_back_after(
    login, store: Store, replica_url: str
) -> None:
    manager = await login("manager")
    kind = await make_incident_type(manager)
    await make_incident(manager, incident_type=kind["id"])
    manager.cookies.clear()  # no read-your-writes window: the replica (empty) answers
    assert (await manager.get(TICKETS)).json()["count"] == 0
    await _set_connections(replica_url, allowed=False)
    try:
        for _ in range(3):  # every read, none failing: the primary answers
            response = await manager.get(TICKETS)
            assert response.status_code == 200 and response.json()["count"] == 1
        assert store.replica_error is not None
        ready = await manager.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["read_replica"].startswith("error: ")
    finally:
        await _set_connections(replica_url, allowed=True)
    store._replica_retry_at = 0.0  # the retry interval has passed
    assert (await manager.get(TICKETS)).json()["count"] == 0
    assert store.replica_error is None
    assert (await manager.get("/readyz")).json()["read_replica"] == "ok"


async def test_a_node_starts_and_serves_with_its_replica_down(
    replica_url: str, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    closed = "postgresql://postgres@127.0.0.1:9/nowhere"  # the discard port: refused
    settings = make_settings(
        database_url, tmp_path_factory.mktemp("data"), database_read_url=closed
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application), base_url="http://testserver"
        ) as client:
            ready = await client.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json()["read_replica"].startswith("error: ")
            assert (await client.get(TICKETS)).status_code == 401  # answered, not a 503
        assert application.state.store.replica_error is not None
