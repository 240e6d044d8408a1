"""A resource's first list page as a statement, and its plan, for tests that read plans."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from starlette.datastructures import QueryParams

from api.crud import Resource
from api.listing import page_select


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


def _literal(value: Any) -> str:
    """A bound value as SQL text (EXECUTE takes no bind parameters)."""
    if isinstance(value, list):
        return "ARRAY[" + ", ".join(map(_literal, value)) + "]"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    assert isinstance(value, int), value  # list statements bind text, integers and lists
    return str(value)


async def prepared_plan(store: Any, statement: Any, *, generic: bool) -> str:
    """PostgreSQL's plan of `statement` (plain or `bound`) prepared as asyncpg prepares it:
    `generic`, the plan PostgreSQL keeps after five runs, blind to the values; else the
    plan made with them."""
    found = store.database._backend.statements.lookup(statement)
    assert found is not None
    compiled, extracted, values = found
    args = compiled.bind(extracted, values)
    async with store.unit_of_work(actor_id=None) as uow:  # SET LOCAL and PREPARE end with it
        raw = uow.conn.raw_connection
        if generic:
            await raw.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        await raw.execute(f"PREPARE bms_test_plan AS {compiled.sql}")
        try:
            literals = ", ".join(map(_literal, args))
            rows = await raw.fetch(f"EXPLAIN EXECUTE bms_test_plan({literals})")
        finally:
            await raw.execute("DEALLOCATE bms_test_plan")
    return "\n".join(row[0] for row in rows)
