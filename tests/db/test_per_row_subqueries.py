"""A list's per-row subqueries run for the page's rows only (#15).

Time-off requests carry the shifts each one conflicts with, scheduled events their
attendees: a correlated subquery per row. `api/listing.page_select` picks the page's ids on
the bare rows first, then reads those rows with their subquery columns. SQLite computed them
for every row it read before its sort (all of them when the ordering has ties, as the
default `-created_at` has for rows written in one transaction). PostgreSQL already delays
an expensive column past a top-N sort; its plan is checked too, so that stays true.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from api.crud import Resource
from api.resources import scheduled_events, time_off_requests
from db.tables import scheduled_events as event_rows
from db.tables import time_off_requests as request_rows
from domain import scheduled_events as events
from domain import shifts, time_off
from tests.builders.facilities import make_facility
from tests.builders.lists import first_page
from tests.builders.scheduled_events import make_scheduled_event
from tests.builders.shifts import at, make_shift
from tests.builders.time_off import make_time_off

PAGE_ROWS = 3
ROWS = 4 * PAGE_ROWS
# resource, its table, a manager's list query
RESOURCES: dict[str, tuple[Resource, sa.Table, sa.Select[Any]]] = {
    "time-off": (time_off_requests.RESOURCE, request_rows, time_off.EVERY_REQUEST),
    "scheduled-events": (scheduled_events.RESOURCE, event_rows, events.EVERY_EVENT),
}


@pytest.fixture
async def tied_rows(login, store) -> dict[str, Any]:
    """ROWS time-off requests and events, each row with a subquery value, one created_at."""
    manager = await login("manager")
    operator = await login("operator")
    facility = await make_facility(manager)
    await make_shift(manager, user=operator.user["user"], facility=facility["id"])
    await make_shift(
        manager, user=operator.user["user"], facility=facility["id"], start=at(30), end=at(38)
    )
    for _ in range(ROWS):
        await make_time_off(operator, start_date="2026-12-01", end_date="2026-12-02")
        await make_scheduled_event(manager, attendees=[operator.user["user"]])
    async with store.connection() as conn:
        for table in (request_rows, event_rows):
            stamp = await conn.fetch_val(sa.select(sa.func.min(table.c.created_at)))
            await conn.execute(table.update().values(created_at=stamp))
    return {"manager": manager, "operator": operator}


async def _plan(store: Any, statement: sa.Select[Any]) -> Any:
    """PostgreSQL: the executed plan (JSON); SQLite: the query plan's rows."""
    found = store.database._backend.statements.lookup(statement)
    assert found is not None
    compiled, extracted, _ = found
    args = compiled.bind(extracted, None)
    async with store.connection() as conn:
        raw = conn.raw_connection
        if store.is_postgres:
            explain = "EXPLAIN (ANALYZE, FORMAT JSON) "
            return orjson.loads(await raw.fetchval(explain + compiled.sql, *args))[0]["Plan"]
        async with raw.execute("EXPLAIN QUERY PLAN " + compiled.sql, args) as cursor:
            return [tuple(row) for row in await cursor.fetchall()]


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    found = [plan]
    for child in plan.get("Plans", ()):
        found += _nodes(child)
    return found


@pytest.mark.parametrize("kind", RESOURCES)
async def test_per_row_subqueries_run_for_the_page_only(store, tied_rows, kind) -> None:
    resource, table, query = RESOURCES[kind]
    plan = await _plan(store, first_page(resource, "", size=PAGE_ROWS, query=query))
    if store.is_postgres:
        subplans = [n for n in _nodes(plan) if n.get("Subplan Name", "").startswith("SubPlan")]
        assert subplans, plan
        assert all(n["Actual Loops"] <= PAGE_ROWS for n in subplans), plan
        return
    # SQLite: the table is scanned and sorted inside the subquery that picks the page's ids;
    # the statement itself (where the per-row subquery runs) reads only those rows, by id.
    reads = [row for row in plan if row[3].split(" ")[:2] in (["SCAN", table.name],
                                                               ["SEARCH", table.name])]  # fmt: skip
    top = [row for row in reads if row[1] == 0]
    assert top and all("PRIMARY KEY" in row[3] for row in top), plan
    assert any(row[1] != 0 for row in reads), plan


async def test_a_page_of_tied_rows_keeps_its_order_count_and_values(tied_rows) -> None:
    """Pages of rows that tie on the ordering: `-id` order, the count, per-row values."""
    for client in (tied_rows["manager"], tied_rows["operator"]):  # shared and per-actor lists
        for path in ("/api/time-off-requests/", "/api/scheduled-events/"):
            seen: list[dict[str, Any]] = []
            for page in range(1, ROWS // PAGE_ROWS + 1):
                listed = await client.get(path, params={"page_size": PAGE_ROWS, "page": page})
                assert listed.status_code == 200, listed.text
                assert listed.json()["count"] == ROWS
                seen += listed.json()["results"]
            assert [row["id"] for row in seen] == sorted((row["id"] for row in seen), reverse=True)
            assert len({row["id"] for row in seen}) == ROWS
            for row in seen[:: PAGE_ROWS - 1]:
                assert (await client.get(f"{path}{row['id']}/")).json() == row
            values = [row.get("conflicting_shifts", row.get("attendees")) for row in seen]
            assert all(len(value) == (2 if "time-off" in path else 1) for value in values)


def test_the_conflict_window_covers_the_longest_shift() -> None:
    """The SQL window starts MAX_SHIFT_DAYS early: a longer shift could be missed."""
    assert timedelta(days=time_off.MAX_SHIFT_DAYS) >= shifts.MAX_SHIFT


async def test_conflicting_shifts_are_read_from_an_index_range(store, tied_rows) -> None:
    """Each request reads only the requester's shifts near its dates, not all of them."""
    if not store.is_postgres:
        pytest.skip("the index condition is read from PostgreSQL's plan")
    statement = first_page(
        time_off_requests.RESOURCE, "", size=PAGE_ROWS, query=time_off.EVERY_REQUEST
    )
    found = store.database._backend.statements.lookup(statement)
    assert found is not None
    compiled, extracted, _ = found
    async with store.unit_of_work(actor_id=None) as uow:  # SET LOCAL ends with it
        raw = uow.conn.raw_connection
        await raw.execute("SET LOCAL enable_seqscan = off")  # nearly empty tables here
        explain = "EXPLAIN (FORMAT JSON) " + compiled.sql
        plan = orjson.loads(await raw.fetchval(explain, *compiled.bind(extracted, None)))
    reads = [n for n in _nodes(plan[0]["Plan"]) if n.get("Relation Name") == "shifts"]
    conditions = [n.get("Index Cond", "") for n in _nodes(plan[0]["Plan"])]
    assert reads, plan
    assert any("user_id" in c and "start <" in c and "start >" in c for c in conditions), plan
