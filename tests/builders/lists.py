"""A resource's first list page as a statement, and its plan, for tests that read plans."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa
from starlette.datastructures import QueryParams

from api import listing
from api.crud import Resource
from api.listing import page_select
from db.statements import bound


def first_page(
    resource: Resource,
    query_string: str,
    *,
    size: int = 50,
    query: Any = None,
    ids_first: bool = False,
) -> sa.Select[Any]:
    """What `GET <resource>?<query_string>` reads for page 1 (a manager's list, or `query`);
    `ids_first`: read as a deep page is (`api.listing.DEEP_PAGE_OFFSET`)."""
    params = QueryParams(query_string)
    spec = resource.spec
    base = resource.list_query(None) if query is None else query
    return page_select(
        base,
        spec.where(params),
        spec.order_keys(params),
        limit=size,
        offset=0,
        id_column=spec.id_column,
        ids_first=ids_first,
    )


def served_statements(resource: Resource, query_string: str, *, size: int = 50) -> Any:
    """(plain page, matches-first page or None) exactly as `GET <resource>?<query_string>`
    runs them for page 1 (the list's event version and total included), bound."""
    spec, query = resource.spec, resource.list_query(None)
    shape, values = spec.shape(QueryParams(query_string))
    shared = listing._SHARED[id(query)]
    first_page = listing.first_page_size(1, size, values)
    statements = listing._page_statements(shared, spec, shape, first_page=first_page)
    page = {**values, listing._LIMIT: size, listing._OFFSET: 0}
    few = None if statements.few is None else bound(statements.few, **page)
    return bound(statements.page, **page), few


def _literal(value: Any) -> str:
    """A bound value as SQL text (EXECUTE takes no bind parameters)."""
    if isinstance(value, list):
        return "ARRAY[" + ", ".join(map(_literal, value)) + "]"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    assert isinstance(value, int), value  # list statements bind text, integers and lists
    return str(value)


async def prepared_plan(
    store: Any, statement: Any, *, generic: bool, before: Sequence[str] = ()
) -> str:
    """PostgreSQL's plan of `statement` (plain or `bound`) prepared as asyncpg prepares it:
    `generic`, the plan PostgreSQL keeps after five runs, blind to the values; else the
    plan made with them. `before`: SQL run first in the same transaction, rolled back."""
    found = store.database._backend.statements.lookup(statement)
    assert found is not None
    compiled, extracted, values = found
    args = compiled.bind(extracted, values)
    literals = ", ".join(map(_literal, args))
    execute = f"EXECUTE bms_test_plan({literals})" if literals else "EXECUTE bms_test_plan"
    async with store.connection() as conn:
        raw = conn.raw_connection
        transaction = await conn.transaction().start()  # SET LOCAL and `before` end with it
        try:
            for sql in before:
                await raw.execute(sql)
            if generic:
                await raw.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            await raw.execute(f"PREPARE bms_test_plan AS {compiled.sql}")
            rows = await raw.fetch(f"EXPLAIN {execute}")
        finally:
            await transaction.rollback()
            # PREPARE outlives the transaction (the connection goes back to the pool).
            named = "SELECT 1 FROM pg_prepared_statements WHERE name = 'bms_test_plan'"
            if await raw.fetchval(named):
                await raw.execute("DEALLOCATE bms_test_plan")
    return "\n".join(row[0] for row in rows)


@asynccontextmanager
async def rolled_back(store: Any) -> AsyncIterator[Any]:
    """A connection inside a transaction rolled back at the end: the rows and statistics
    a plan test sets up go with it."""
    async with store.connection() as conn:
        transaction = await conn.transaction().start()
        try:
            yield conn
        finally:
            await transaction.rollback()


async def plan_counts(store: Any, conn: Any, statement: Any) -> dict[str, int]:
    """How often PostgreSQL planned `statement` on `conn`: generic plans, custom plans."""
    found = store.database._backend.statements.lookup(statement)
    assert found is not None
    counts = await conn.raw_connection.fetchrow(
        "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement = $1",
        found[0].sql,
    )
    assert counts is not None, "not prepared on this connection"
    return dict(counts)
