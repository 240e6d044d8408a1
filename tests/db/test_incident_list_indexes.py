"""The incident list's pages: status filters read an index without sorting, and the plans
PostgreSQL keeps for first pages (the event version, generic plans where none is blind)."""

from __future__ import annotations

import pytest

from api.resources.incident_tickets import RESOURCE
from api.resources.service_tickets import RESOURCE as SERVICE_RESOURCE
from tests.builders.lists import (
    first_page,
    plan_counts,
    prepared_plan,
    rolled_back,
    served_statements,
)
from tests.builders.tickets import insert_incident_type


def _events(topic: str, count: int) -> str:
    """SQL adding `count` events of `topic`."""
    return (
        "INSERT INTO events (topic, action, object_id, data, created_at) "
        f"SELECT '{topic}', 'updated', g, '{{}}', now() FROM generate_series(1, {count}) g"
    )


@pytest.mark.parametrize(
    ("query_string", "index"),
    [
        ("status=open&ordering=-priority", "ix_incident_tickets_status_priority_rank_id"),
        ("status=open", "ix_incident_tickets_status_created_at_id"),
    ],
)
@pytest.mark.usefixtures("statistics_of_every_status")  # not an earlier test's ANALYZE
async def test_status_lists_read_an_index_without_sorting(store, query_string, index) -> None:
    found = store.database._backend.statements.lookup(first_page(RESOURCE, query_string))
    assert found is not None
    statement, extracted, _ = found
    args = statement.bind(extracted, None)
    # A transaction so that SET LOCAL ends with it; the table is nearly empty here, so
    # sequential scans and sorts are priced out to see which index the planner can use.
    async with store.unit_of_work(actor_id=None) as uow:
        raw = uow.conn.raw_connection
        if store.is_postgres:
            await raw.execute("SET LOCAL enable_seqscan = off")
            await raw.execute("SET LOCAL enable_sort = off")
            await raw.execute("SET LOCAL enable_incremental_sort = off")
            plan = [row[0] for row in await raw.fetch("EXPLAIN " + statement.sql, *args)]
        else:
            async with raw.execute("EXPLAIN QUERY PLAN " + statement.sql, args) as cursor:
                plan = [row[-1] for row in await cursor.fetchall()]
    text = "\n".join(plan)
    assert index in text, text
    assert "Sort" not in text and "TEMP B-TREE" not in text, text


async def test_a_pages_event_version_is_one_probe_whatever_the_statistics(store) -> None:
    """Each list page carries its topic's newest event id. Statistics taken while the topic
    had no events (a new database; thousands of writes before the next ANALYZE) made
    `max(id)` aggregate every event of the topic on every page."""
    if not store.is_postgres:
        pytest.skip("the plan is PostgreSQL's")
    stale = [  # rolled back with the plan's transaction
        "DELETE FROM events",
        _events("profiles", 1),  # a new database: the first admin's event
        "ANALYZE events",
        _events("incident-tickets", 5000),
    ]
    page, _ = served_statements(RESOURCE, "status=open")
    plan = await prepared_plan(store, page, generic=True, before=stale)
    assert "Index Only Scan Backward using ix_events_topic_id" in plan, plan
    assert "Aggregate" not in plan, plan


async def test_a_quiet_topics_version_is_found_by_its_topic(store) -> None:
    """A generic plan blind to the topic read the events' primary key backwards, filtering
    by topic: for a quiet list (service tickets) behind 20,000 newer ticket events, all of
    them. The topic is written into the statement."""
    if not store.is_postgres:
        pytest.skip("the plan is PostgreSQL's")
    busy = [_events("incident-tickets", 20000), "ANALYZE events"]  # rolled back with the plan
    page, _ = served_statements(SERVICE_RESOURCE, "")
    plan = await prepared_plan(store, page, generic=True, before=busy)
    assert "ix_events_topic_id" in plan, plan
    assert "pk_events" not in plan, plan


async def test_a_first_page_is_planned_once_not_per_request(store, make_user) -> None:
    """PostgreSQL keeps a prepared statement's generic plan once it costs no more than the
    plans made for each execution. `LIMIT $1 OFFSET $2` priced every generic plan as
    reading a tenth of the table past an unknown offset, and the version's `LIMIT $3` a
    tenth of the topic's events, so each page was planned anew; a first page now carries
    its size and no offset, the version its `LIMIT 1`."""
    if not store.is_postgres:
        pytest.skip("plan caching is PostgreSQL's")
    user = await make_user("admin")
    page, _ = served_statements(RESOURCE, "status=open")
    async with rolled_back(store) as conn:  # the tickets, events and statistics go
        raw = conn.raw_connection
        type_id = await insert_incident_type(raw, "Planned once")
        await raw.execute(
            """
            INSERT INTO incident_tickets (number, title, incident_type_id, priority,
                status, reported_by, occurred_at, created_at, updated_at)
            SELECT 'INC-P' || g, 'Ticket ' || g, $1, 'low',
                (ARRAY['open', 'closed'])[1 + g % 2], $2, now(), now(), now()
            FROM generate_series(1, 20000) AS g
            """,
            type_id,
            user["user"],
        )
        # The page's version reads these: LIMIT 1 among 20,000.
        await raw.execute(_events("incident-tickets", 20000))
        await raw.execute("ANALYZE incident_tickets, events")
        for _ in range(8):
            await conn.fetch_all(page)
        plans = await plan_counts(store, conn, page)
    assert plans["generic_plans"] > 0, plans


async def test_a_first_page_filtered_by_a_value_is_planned_for_that_value(store, make_user) -> None:
    """A generic plan is blind to a filter's value: after five pages of a busy facility it
    would read the list order's index through the whole table for a quiet one. A first
    page whose filters bind values keeps being planned for them."""
    if not store.is_postgres:
        pytest.skip("plan caching is PostgreSQL's")
    user = await make_user("admin")
    async with rolled_back(store) as conn:  # the rows and statistics go
        raw = conn.raw_connection
        type_id = await insert_incident_type(raw, "Quiet facility")
        location = await raw.fetchval(
            "INSERT INTO locations (name, code, timezone, created_at, updated_at) "
            "VALUES ('Quiet', 'QT', 'UTC', now(), now()) RETURNING id"
        )
        busy, quiet = [
            await raw.fetchval(
                "INSERT INTO facilities (name, location_id, kind, created_at, updated_at) "
                "VALUES ($1, $2, 'studio', now(), now()) RETURNING id",
                name,
                location,
            )
            for name in ("Busy", "Quiet")
        ]
        await raw.execute(
            """
            INSERT INTO incident_tickets (number, title, incident_type_id, priority,
                status, reported_by, facility_id, occurred_at, created_at, updated_at)
            SELECT 'INC-Q' || g, 'Ticket ' || g, $1, 'low', 'open', $2,
                CASE WHEN g <= 3 THEN $4::int ELSE $3::int END, now(), now(), now()
            FROM generate_series(1, 20000) AS g
            """,
            type_id,
            user["user"],
            busy,
            quiet,
        )
        await raw.execute("ANALYZE incident_tickets")
        for facility in [busy] * 8 + [quiet]:
            page, _ = served_statements(RESOURCE, f"facility={facility}")
            await conn.fetch_all(page)
        plans = await plan_counts(store, conn, page)
    assert plans["generic_plans"] == 0, plans
