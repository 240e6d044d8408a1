"""`?search=` on incident and service tickets: a rare term reads the trigram index (#15).

Migrations 0011 and 0012 gave PostgreSQL GIN trigram indexes on the searched columns, and
0017 moved them to `search_text`, the three fields lowered into one: one index scan a search.
asyncpg runs each list statement as a prepared statement, which PostgreSQL plans
generically (blind to the term) after five runs, so the plans are checked both ways:
generic and with the term.
A search known to match few rows finds its matches first (`listing._matches_first`); the
plain page stays what it was: the list order's index, read until a page is full.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from api.resources.incident_tickets import RESOURCE
from api.resources.service_tickets import RESOURCE as SERVICE_RESOURCE
from db import migrate
from db.store import Store
from tests.builders.lists import prepared_plan, served_statements
from tests.builders.tickets import insert_incident_type
from tests.conftest import _asyncpg_dsn, create_postgres_database, drop_postgres_database

INDEX = "ix_incident_tickets_search_trgm"
SERVICE_INDEX = "ix_service_tickets_search_trgm"
TICKETS = 10_000  # the size of the benchmark's table: at a few thousand, reading it all is cheap


@pytest.fixture
async def tickets(store, make_user) -> None:
    """Every ticket says "lost sync"; one is about a klystron."""
    if not store.is_postgres:
        pytest.skip("the trigram index is PostgreSQL's (SQLite searches by reading the table)")
    user = await make_user("admin")
    async with store.unit_of_work(actor_id=None) as uow:
        raw = uow.conn.raw_connection
        type_id = await insert_incident_type(raw, "Search")
        await raw.execute(
            """
            INSERT INTO incident_tickets (number, title, description, incident_type_id,
                priority, status, reported_by, occurred_at, created_at, updated_at)
            SELECT 'INC-' || lpad(g::text, 6, '0'),
                CASE WHEN g = 1234 THEN 'Klystron arc on TX 3' ELSE 'Incident ' || g END,
                'transmitter ' || (g % 97) || ' lost sync', $1, 'low', 'open', $2,
                now(), now() - make_interval(secs => g), now()
            FROM generate_series(1, $3::int) AS g
            """,
            type_id,
            user["user"],
            TICKETS,
        )
        # New entries wait in the GIN index's pending list until (auto)vacuum merges them,
        # and the planner prices reading that list; merged here as autovacuum would.
        await raw.execute(f"SELECT gin_clean_pending_list('{INDEX}')")
        await raw.execute("ANALYZE incident_tickets")


def _statements(query_string: str, resource: Any = RESOURCE) -> tuple[Any, Any]:
    """(plain page, matches-first page) of `?<query_string>` bound for page 1 of 50."""
    page, few = served_statements(resource, query_string)
    assert few is not None
    return page, few


@pytest.mark.parametrize("generic", [True, False], ids=["generic", "with-the-term"])
async def test_a_rare_term_reads_the_trigram_index(store, tickets, generic) -> None:
    _, matches_first = _statements("search=klystron")
    plan = await prepared_plan(store, matches_first, generic=generic)
    assert plan.count(f"Bitmap Index Scan on {INDEX}") == 1, plan  # of `search_text`
    assert "Seq Scan on incident_tickets" not in plan, plan
    assert "ix_incident_tickets_created_at" not in plan, plan


@pytest.mark.parametrize("generic", [True, False], ids=["generic", "with-the-term"])
async def test_a_common_term_keeps_the_list_order_index(store, tickets, generic) -> None:
    """Every ticket matches: the plain page reads 50 rows off `(created_at, id)` and stops."""
    plain, _ = _statements("search=lost+sync")
    plan = await prepared_plan(store, plain, generic=generic)
    assert "Index Scan Backward using ix_incident_tickets_created_at_id " in plan, plan
    assert INDEX not in plan, plan
    assert not [line for line in plan.splitlines() if line.strip(" ->").startswith("Sort  (")], plan


@pytest.fixture
async def service_tickets(store, make_user) -> None:
    """Every service ticket is about a leaking roof; one about a klystron."""
    if not store.is_postgres:
        pytest.skip("the trigram index is PostgreSQL's (SQLite searches by reading the table)")
    user = await make_user("admin")
    async with store.unit_of_work(actor_id=None) as uow:
        raw = uow.conn.raw_connection
        await raw.execute(
            """
            INSERT INTO service_tickets (number, title, description, category, priority,
                status, requested_by, created_at, updated_at)
            SELECT 'SRV-' || lpad(g::text, 6, '0'),
                CASE WHEN g = 1234 THEN 'Klystron spares' ELSE 'Request ' || g END,
                'studio ' || (g % 97) || ' roof leaking', 'maintenance', 'low', 'new', $1,
                now() - make_interval(secs => g), now()
            FROM generate_series(1, $2::int) AS g
            """,
            user["user"],
            TICKETS,
        )
        await raw.execute(f"SELECT gin_clean_pending_list('{SERVICE_INDEX}')")
        await raw.execute("ANALYZE service_tickets")


@pytest.mark.parametrize("generic", [True, False], ids=["generic", "with-the-term"])
async def test_a_rare_term_reads_the_service_tickets_trigram_index(
    store, service_tickets, generic
) -> None:
    _, matches_first = _statements("search=klystron", SERVICE_RESOURCE)
    plan = await prepared_plan(store, matches_first, generic=generic)
    assert plan.count(f"Bitmap Index Scan on {SERVICE_INDEX}") == 1, plan
    assert "Seq Scan on service_tickets" not in plan, plan


async def test_the_index_exists_where_the_migration_made_it(store) -> None:
    assert await store.has_index(INDEX) is store.is_postgres
    assert await store.has_index(SERVICE_INDEX) is store.is_postgres
    assert await store.has_index("ix_no_such_index") is False


async def test_without_the_right_to_create_pg_trgm_the_migration_leaves_the_index_out(
    backend,
) -> None:
    """A role that owns no database may not create even a trusted extension: the migration
    warns, goes on without the index, and searching still works (by reading the table)."""
    if backend != "postgres":
        pytest.skip("SQLite has no extensions")
    url = await create_postgres_database()
    role = f"bms_no_ext_{uuid.uuid4().hex[:8]}"
    name = make_url(url).database
    admin = await asyncpg.connect(_asyncpg_dsn(url))
    try:
        await admin.execute(f"CREATE ROLE {role} LOGIN")
        await admin.execute(f"GRANT ALL ON SCHEMA public TO {role}")
        await admin.execute(f'REVOKE CREATE ON DATABASE "{name}" FROM PUBLIC')
        limited = make_url(url).set(username=role).render_as_string(hide_password=False)
        with pytest.warns(UserWarning, match="pg_trgm"):
            await asyncio.to_thread(migrate.upgrade, limited)
        store = Store(limited)
        await store.connect()
        try:
            assert await store.has_index(INDEX) is False
            assert await store.has_index(SERVICE_INDEX) is False
            async with store.connection() as conn:
                found = await conn.fetch_all(_statements("search=klystron")[0])
            assert found == []
        finally:
            await store.disconnect()
    finally:
        await admin.close()
        await drop_postgres_database(url)
        postgres = await asyncpg.connect(_asyncpg_dsn(url).rsplit("/", 1)[0] + "/postgres")
        try:
            await postgres.execute(f"DROP ROLE IF EXISTS {role}")
        finally:
            await postgres.close()


@pytest.mark.parametrize("form", ["plain page", "matches first"])
async def test_the_term_is_lowered_once_not_for_every_row_read(store, form) -> None:
    """`lower($1)` in a filter runs for each row the filter reads (~4,800 a page for a 1%
    term): the term is lowered in a subquery PostgreSQL runs once (an InitPlan)."""
    if not store.is_postgres:
        pytest.skip("the plan is PostgreSQL's")
    plain, matches_first = _statements("search=lost+sync")
    plan = await prepared_plan(
        store, plain if form == "plain page" else matches_first, generic=True
    )
    conditions = [line for line in plan.splitlines() if "Filter:" in line or "Cond:" in line]
    assert conditions and not any("lower(" in line for line in conditions), plan
    assert "InitPlan" in plan, plan
