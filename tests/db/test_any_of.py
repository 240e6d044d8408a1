"""`any_of`: a list of values as one parameter, one statement shape for any number of values."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from db.any_of import ValueList, any_of
from db.statements import bound
from db.store import Store
from db.tables import locations

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
BY_NAMES = sa.select(locations.c.name).where(
    any_of(locations.c.name, sa.bindparam("names", type_=ValueList(locations.c.name.type)))
)
BY_IDS = sa.select(locations.c.name).where(
    any_of(locations.c.id, sa.bindparam("ids", type_=ValueList(locations.c.id.type)))
)


async def _add(store: Store, *names: str) -> list[int]:
    ids = []
    async with store.connection() as conn:
        for name in names:
            ids.append(
                await conn.execute(
                    sa.insert(locations).values(
                        name=name, code=name[:16], timezone="UTC", created_at=T0, updated_at=T0
                    )
                )
            )
    return ids


@pytest.fixture(params=[True, False], ids=["fast", "plain"])
async def either(store: Store, request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    """The test database on the compiled-statement cache (FAST_PATHS) and on the plain path."""
    other = Store(str(store.database.url), pool_max=2, fast_paths=request.param)
    await other.connect()
    try:
        yield other
    finally:
        await other.disconnect()


async def test_matches_any_listed_value(store: Store, either: Store) -> None:
    ids = await _add(store, "Alpha", "Beta", "Gamma", "O'Hare")
    async with either.connection() as conn:
        for names, expected in (
            (["Alpha"], {"Alpha"}),
            (["Alpha", "Gamma", "Missing"], {"Alpha", "Gamma"}),
            (["O'Hare", "Beta"], {"O'Hare", "Beta"}),
            ([], set()),
        ):
            rows = await conn.fetch_all(bound(BY_NAMES, names=names))
            assert {row[0] for row in rows} == expected
        rows = await conn.fetch_all(bound(BY_IDS, ids=[ids[1], ids[3]]))
        assert {row[0] for row in rows} == {"Beta", "O'Hare"}
        built = sa.select(locations.c.name).where(any_of(locations.c.id, [ids[0]]))
        assert [row[0] for row in await conn.fetch_all(built)] == ["Alpha"]


def test_one_shape_whatever_the_number_of_values() -> None:
    """Same cache key and no values rendered into the SQL: a statement cache can keep it."""
    two = sa.select(locations.c.id).where(any_of(locations.c.name, ["a", "b"]))
    four = sa.select(locations.c.id).where(any_of(locations.c.name, ["a", "b", "c", "d"]))
    two_key, four_key = two._generate_cache_key(), four._generate_cache_key()
    assert two_key is not None and four_key is not None
    assert two_key.key == four_key.key
    for dialect in (sa.dialects.postgresql.dialect(), sa.dialects.sqlite.dialect()):
        compiled = four.compile(dialect=dialect)
        assert not compiled.post_compile_params
        assert "'c'" not in str(compiled)


async def test_sqlite_searches_the_columns_index(store: Store) -> None:
    """A comparison, not `(... IN (SELECT ...)) = 1`, which SQLite could only answer by
    reading every row (13 ms instead of 0.2 ms for 1% of 100,000)."""
    if store.is_postgres:
        pytest.skip("PostgreSQL's `= ANY($1)`: the ordering-index tests check its plans")
    sql = str(BY_NAMES.compile(dialect=sa.dialects.sqlite.dialect()))
    assert "= 1" not in sql, sql
    async with store.connection() as conn:
        rows = await conn.raw_connection.execute_fetchall(
            "EXPLAIN QUERY PLAN " + sql, ('["Alpha"]',)
        )
    plan = " / ".join(str(row[-1]) for row in rows)
    assert "SEARCH locations USING" in plan and "SCAN locations" not in plan, plan
