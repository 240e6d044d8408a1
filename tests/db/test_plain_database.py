"""FAST_PATHS=0 for the database: `databases`' own backends, same rows as the cached path."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from db.compiled_cache import CachingDatabase
from db.database import PlainDatabase
from db.statements import bound
from db.store import Store
from db.tables import locations

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
BY_NAME = sa.select(locations.c.id, locations.c.name).where(
    locations.c.name == sa.bindparam("name")
)


@pytest.fixture
async def plain(store: Store) -> AsyncIterator[Store]:
    """A second Store on the test database, on the plain path."""
    other = Store(str(store.database.url), pool_max=2, fast_paths=False)
    await other.connect()
    try:
        yield other
    finally:
        await other.disconnect()


async def test_the_switch_picks_the_database_class(store: Store, plain: Store) -> None:
    assert isinstance(plain.database, PlainDatabase)
    assert not isinstance(plain.database, CachingDatabase)


async def test_plain_path_runs_bound_and_built_statements_alike(store: Store, plain: Store) -> None:
    async with plain.unit_of_work(actor_id=None) as uow:
        for name in ("Alpha", "Bravo"):
            await uow.conn.execute(
                locations.insert().values(
                    name=name, code=name[:3], timezone="UTC", created_at=T0, updated_at=T0
                )
            )
    for each in (store, plain):
        async with each.connection() as conn:
            one = await conn.fetch_one(bound(BY_NAME, name="Bravo"))
            assert one is not None and one["name"] == "Bravo"
            assert await conn.fetch_one(bound(BY_NAME, name="Nowhere")) is None
            assert await conn.fetch_val(bound(BY_NAME, name="Alpha"), column=1) == "Alpha"
            names = [r["name"] async for r in conn.iterate(sa.select(locations.c.name))]
            assert sorted(names) == ["Alpha", "Bravo"]
