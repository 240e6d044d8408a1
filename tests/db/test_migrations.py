"""The migrations build exactly the schema `db/tables.py` describes."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from db.tables import metadata
from db.urls import async_driver_url


def _has_expressions(index: sa.Index) -> bool:
    return any(not isinstance(part, sa.Column) for part in index.expressions)


def _other_dialect(index: sa.Index, dialect: str) -> bool:
    """An index `db/tables.py` creates only on another database (`Index.ddl_if`)."""
    ours = {i.name: i for table in metadata.tables.values() for i in table.indexes}
    only = ours[index.name]._ddl_if if index.name in ours else None  # Alembic copies indexes
    return only is not None and only.dialect not in (None, dialect)


# SQLite cannot reflect expression indexes; both libraries say so (and compare the rest).
@pytest.mark.filterwarnings("ignore:.*expression-based index")
async def test_migrated_schema_matches_the_tables_module(database_url) -> None:
    engine = create_async_engine(async_driver_url(database_url), poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
            )
    finally:
        await engine.dispose()
    # Alembic cannot compare expression indexes (it reflects them only partly), and it
    # ignores `Index.ddl_if(dialect=...)`: an index of another database's is not missing.
    dialect = engine.dialect.name
    diff = [
        d
        for d in diff
        if not (
            d[0].endswith("_index") and (_has_expressions(d[1]) or _other_dialect(d[1], dialect))
        )
    ]
    assert diff == [], diff
