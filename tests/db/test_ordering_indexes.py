"""Every ordering a ticket list allows reads an index, never a sort of the whole table (#15).

The tables are nearly empty here, so sequential scans and full sorts are priced out to see
which index the planner can use. Ties break on `-id`: an ordering whose index is exact
(`-col` on `(col, id)`, both priority directions) is checked with incremental sorts priced
out too; the others may reorder each run of equal values by `-id` (an incremental sort on
PostgreSQL, a "right part" sort on SQLite), which reads a page's rows plus one run.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from starlette.datastructures import QueryParams

from api.crud import Resource
from api.resources import incident_tickets, service_tickets

RESOURCES = {"incident": incident_tickets.RESOURCE, "service": service_tickets.RESOURCE}
# Orderings read off an index in exactly the list's order (ties on -id included).
EXACT = {
    "incident": {"-title", "-occurred_at", "-updated_at", "priority", "-priority", "-created_at",
                 "-id"},
    "service": {"-title", "-completed_at", "-updated_at", "priority", "-priority",
                "-created_at", "-id"},
}  # fmt: skip
# One value, several values (= ANY), none: the list's filter narrows, the index orders.
FILTERS = {"incident": ("", "status=open", "status=open,acknowledged"), "service": ("",)}


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


def _page(resource: Resource, query_string: str) -> sa.Select[Any]:
    params = QueryParams(query_string)
    spec = resource.spec
    return (
        resource.list_query(None)
        .where(*spec.where(params))
        .order_by(*spec.order_by(params))
        .limit(50)
        .offset(0)
    )


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


@pytest.mark.parametrize(("kind", "query_string", "exact"), _cases())
async def test_every_ordering_reads_an_index(store, kind, query_string, exact) -> None:
    plan = await _plan(store, _page(RESOURCES[kind], query_string), exact=exact)
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
