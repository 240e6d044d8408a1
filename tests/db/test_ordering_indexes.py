"""Every ordering a ticket list allows reads an index, never a sort of the whole table (#15).

The tables are nearly empty here, so sequential scans and full sorts are priced out to see
which index the planner can use. Their statistics are those of every status in use
(`statistics_of_every_status`, tests/db/conftest.py), not whatever an earlier test's
ANALYZE left: a choice filter's values are written into the statement, and the planner
weighs them against those.
Ties break on `-id`: an ordering whose index is exact (`-col` on `(col, id)`, both priority
directions) is checked with incremental sorts priced out too; the others may reorder each
run of equal values by `-id` (an incremental sort on PostgreSQL, a "right part" sort on
SQLite), which reads a page's rows plus one run.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from api.resources import incident_tickets, service_tickets
from tests.builders.lists import first_page, prepared_plan
from tests.builders.tickets import insert_incident_type

RESOURCES = {"incident": incident_tickets.RESOURCE, "service": service_tickets.RESOURCE}
# Orderings read off an index in exactly the list's order (ties on -id included).
EXACT = {
    "incident": {"-title", "-occurred_at", "-updated_at", "-created_at", "priority", "-priority",
                 "status", "-status", "-id"},
    "service": {"-title", "-completed_at", "-updated_at", "-created_at", "priority", "-priority",
                "status", "-status", "-id"},
}  # fmt: skip
# One value, several values (= ANY), none: the list's filter narrows, the index orders.
FILTERS = {"incident": ("", "status=open", "status=open,acknowledged"), "service": ("",)}


pytestmark = pytest.mark.usefixtures("statistics_of_every_status")


def _cases() -> list[Any]:
    cases = []
    for kind, resource in RESOURCES.items():
        for name in resource.spec.ordering:
            for ordering in (name, f"-{name}"):
                for where in FILTERS[kind]:
                    query = "&".join(filter(None, [where, f"ordering={ordering}"]))
                    cases.append(
                        pytest.param(kind, query, ordering in EXACT[kind], id=f"{kind}?{query}")
                    )
    return cases


async def _plan(store: Any, statement: sa.Select[Any], *, exact: bool) -> str:
    found = store.database._backend.statements.lookup(statement)
    assert found is not None
    compiled, extracted, _ = found
    args = compiled.bind(extracted, None)
    async with store.unit_of_work(actor_id=None) as uow:  # SET LOCAL ends with it
        raw = uow.conn.raw_connection
        if store.is_postgres:
            await raw.execute("SET LOCAL enable_seqscan = off")
            await raw.execute("SET LOCAL enable_sort = off")
            if exact:
                await raw.execute("SET LOCAL enable_incremental_sort = off")
            rows = await raw.fetch("EXPLAIN " + compiled.sql, *args)
            return "\n".join(row[0] for row in rows)
        async with raw.execute("EXPLAIN QUERY PLAN " + compiled.sql, args) as cursor:
            return "\n".join(row[-1] for row in await cursor.fetchall())


def _nodes(plan: str) -> list[str]:
    """The plan's nodes (`Sort  (cost=...`, `Index Scan ...`), not their details' lines."""
    lines = [line.strip().removeprefix("->").strip() for line in plan.splitlines()]
    return [line for line in lines if "(cost=" in line]


def _sorts(plan: str) -> list[str]:
    """The plan's sorts of any kind (`Sort`, `Incremental Sort`)."""
    return [node for node in _nodes(plan) if "Sort" in node.split("(")[0]]


@pytest.mark.parametrize(("kind", "query_string", "exact"), _cases())
async def test_every_ordering_reads_an_index(store, kind, query_string, exact) -> None:
    plan = await _plan(store, first_page(RESOURCES[kind], query_string), exact=exact)
    if store.is_postgres:
        nodes = _nodes(plan)
        assert not [node for node in nodes if node.startswith("Sort ")], plan
        assert [node for node in nodes if node.startswith("Index")], plan
        if exact:
            assert not [node for node in nodes if node.startswith("Incremental Sort")], plan
    elif "status=" not in query_string:  # SQLite plans filters by its own rules
        assert "USE TEMP B-TREE FOR ORDER BY" not in plan, plan
        if exact:
            assert "TEMP B-TREE" not in plan, plan


@pytest.mark.parametrize(
    ("kind", "where"),
    [("incident", ""), ("incident", "status=open"), ("service", ""), ("service", "status=new")],
)
async def test_a_deep_page_reads_its_ids_from_an_index_alone(store, kind, where) -> None:
    """`?page=40` in the default order: the 1,950 rows skipped are index entries (0014)."""
    statement = first_page(RESOURCES[kind], where, ids_first=True)
    plan = await _plan(store, statement, exact=True)
    if store.is_postgres:
        assert "Index Only Scan Backward using ix_" in plan, plan
        assert not _sorts(plan), plan
    else:
        assert "USING COVERING INDEX" in plan, plan


@pytest.mark.parametrize(
    ("kind", "where"), [("incident", "status=open"), ("service", "status=new")]
)
async def test_a_facilitys_tickets_of_one_status_are_read_in_list_order(store, kind, where) -> None:
    """A wall display's list: one index holds the facility, the status and the order (0016)."""
    statement = first_page(RESOURCES[kind], f"facility=1&{where}")
    plan = await _plan(store, statement, exact=True)
    assert "_facility_id_status_created_at_id" in plan, plan
    assert not (_sorts(plan) if store.is_postgres else "TEMP B-TREE" in plan), plan


@pytest.mark.parametrize("generic", [False, True], ids=["custom", "generic"])
async def test_a_rare_status_and_priority_pair_is_not_read_in_priority_order(
    store, make_user, generic
) -> None:
    """Open and acknowledged tickets are all low here: none is high or critical.

    Assumed independent, the two filters would match a tenth of the tickets, and the planner
    would read the priority index in order hoping to fill a page soon, i.e. the whole table.
    PostgreSQL's statistics on (status, priority) together (0010) tell it the pair is rare,
    if it sees the values: the plan asyncpg's prepared statement settles on is generic, so
    the choices are written into the statement (`Filter.compare_inlined`).
    """
    if not store.is_postgres:
        pytest.skip("multivariate statistics are PostgreSQL's")
    user = await make_user("admin")
    async with store.unit_of_work(actor_id=None) as uow:
        raw = uow.conn.raw_connection
        type_id = await insert_incident_type(raw, "Rare pairs")
        await raw.execute(
            """
            INSERT INTO incident_tickets (number, title, incident_type_id, priority, status,
                reported_by, occurred_at, created_at, updated_at)
            SELECT 'INC-' || g, 'Ticket ' || g, $1,
                CASE WHEN g % 10 < 2 THEN 'low'
                     ELSE (ARRAY['medium', 'high', 'critical'])[1 + g % 3] END,
                CASE WHEN g % 10 < 2 THEN (ARRAY['open', 'acknowledged'])[1 + g % 2]
                     ELSE 'closed' END,
                $2, now(), now(), now()
            FROM generate_series(1, 5000) AS g
            """,
            type_id,
            user["user"],
        )
        await raw.execute("ANALYZE incident_tickets")
    statement = first_page(
        RESOURCES["incident"],
        "status=open,acknowledged&priority=high,critical&ordering=-priority",
    )
    plan = await prepared_plan(store, statement, generic=generic)
    assert "using ix_incident_tickets_priority_rank_id on" not in plan, plan
