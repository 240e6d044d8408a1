"""Foreign keys in input: check referenced rows exist, so clients get DRF's 400, not a 500."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from databases.core import Connection

from db.statements import bound
from domain.errors import ValidationFailed

# field → (table, id or None for "no reference")
References = Mapping[str, tuple[sa.Table, int | None]]


def invalid_pk(value: object) -> str:
    return f'Invalid pk "{value}" - object does not exist.'


@functools.cache
def _lookup(tables: tuple[sa.Table, ...]) -> Any:
    """`SELECT (SELECT id FROM t0 WHERE id = :r0), (SELECT id FROM t1 ...), ...`, built once
    per combination of tables: every reference of a write is checked in one round trip."""
    return sa.select(
        *(
            sa.select(table.c.id)
            .where(table.c.id == sa.bindparam(f"r{i}"))
            .scalar_subquery()
            .label(f"r{i}")
            for i, table in enumerate(tables)
        )
    )


@functools.cache
def all_exist(tables: tuple[sa.Table, ...]) -> sa.ColumnElement[bool]:
    """True when each `:ref_<i>` is null or the id of a row of `tables[i]`: what `check_rows`
    checks, as a condition of a statement that writes only then (`existence_params`)."""
    conditions = []
    for i, table in enumerate(tables):
        # Typed in the SQL: PostgreSQL cannot infer a parameter's type from `IS NULL`.
        ref = sa.cast(sa.bindparam(f"ref_{i}", type_=table.c.id.type), table.c.id.type)
        conditions.append(sa.or_(ref.is_(None), sa.exists().where(table.c.id == ref)))
    return sa.and_(sa.true(), *conditions)


def existence_params(refs: References) -> dict[str, Any]:
    """The values of `all_exist(tuple of refs' tables)`."""
    return {f"ref_{i}": value for i, (_, value) in enumerate(refs.values())}


async def check_rows(conn: Connection, refs: References) -> None:
    """Raise 400 on each field whose id names no row (None means "no reference")."""
    given = [(field, table, value) for field, (table, value) in refs.items() if value is not None]
    if not given:
        return
    statement = _lookup(tuple(table for _, table, _ in given))
    row = await conn.fetch_one(
        bound(statement, **{f"r{i}": value for i, (_, _, value) in enumerate(given)})
    )
    assert row is not None  # a SELECT without FROM returns one row
    errors = {
        field: [invalid_pk(value)]
        for i, (field, _, value) in enumerate(given)
        if row[f"r{i}"] is None
    }
    if errors:
        raise ValidationFailed(errors)


async def require_row(conn: Connection, *, field: str, table: sa.Table, value: int | None) -> None:
    """Raise 400 on `field` unless `value` is None or the id of a row of `table`."""
    await check_rows(conn, {field: (table, value)})
