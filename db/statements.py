"""Statements built once with placeholders, run with each call's values (`bound`).

Public API only (SQLAlchemy's visitors): both database paths accept these. The fast
path (db/compiled_cache.py) binds the values into a statement compiled once per shape;
the plain path fills them in with `Bound.plain()` and lets `databases` compile it.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Table
from sqlalchemy.sql import ClauseElement, bindparam, visitors
from sqlalchemy.sql.elements import BindParameter


@dataclass(frozen=True, slots=True)
class Bound:
    """A statement built once with `sa.bindparam` placeholders, and one execution's values."""

    statement: ClauseElement
    values: Mapping[str, Any]

    def plain(self) -> ClauseElement:
        """A copy of the statement with the values in its placeholders (the uncached path).

        Not `statement.params()`: SQLAlchemy 2.1 keeps those values aside, and `databases`'
        compile (`render_postcompile`) refuses statements that carry them.
        """

        def fill(bind: BindParameter[Any]) -> None:
            if bind.key in self.values:  # `bind` is the traversal's own copy
                bind.value, bind.required = self.values[bind.key], False

        return visitors.cloned_traverse(self.statement, {}, {"bindparam": fill})


def bound(statement: ClauseElement, /, **values: Any) -> Any:
    """Pair a prebuilt statement with its values; pass the result to `conn.fetch_one` & co."""
    return Bound(statement, values)


def plain(query: Any) -> Any:
    """What `databases` can compile: a `Bound` with its values filled in, else `query` as is."""
    return query.plain() if isinstance(query, Bound) else query


@dataclass(frozen=True, slots=True)
class DetailQuery:
    """One row by id, built once per shape (at import): a detail read, or the read before a
    write, then costs no statement building and no cache-key walk, only its values.

    `every`: the row whoever may see every row reads; `own`: the same narrowed to one owner
    (`owner_column`), for rows only their owner (or a manager, an admin) may read.
    """

    every: Any
    own: Any = None

    @classmethod
    def of(cls, query: Any, id_column: Any, *, owner_column: Any = None) -> DetailQuery:
        every = query.where(id_column == bindparam("object_id"))
        own = None if owner_column is None else every.where(owner_column == bindparam("owner_id"))
        return cls(every, own)

    # Any, like `bound`: `databases`' connections are typed to take statements only.
    def by_id(self, object_id: int) -> Any:
        return Bound(self.every, {"object_id": object_id})

    def owned_by(self, owner_id: int, object_id: int) -> Any:
        assert self.own is not None, "DetailQuery.of(..., owner_column=) was not given"
        return Bound(self.own, {"object_id": object_id, "owner_id": owner_id})


# Writes repeat a handful of column sets per table; a PATCH may send any subset of its
# fields, so the statements kept are bounded.
STATEMENTS_CACHED = 512


def row_columns(table: Table) -> list[Column[Any]]:
    """A row's own columns, without the computed ones (`search_text`): what a read or a
    RETURNING fetches, as nothing shows or compares a derived copy."""
    return [column for column in table.c if column.computed is None]


def value_param(table: Table, key: str) -> BindParameter[Any]:
    """The parameter of column `key`'s value in a statement built once (`value_params`
    fills it). Not the column's own name: SQLAlchemy keeps those for its implicit VALUES."""
    return bindparam(f"v_{key}", type_=table.c[key].type)


def value_params(values: Mapping[str, Any]) -> dict[str, Any]:
    """Column values as the parameters `value_param` declares."""
    return {f"v_{key}": value for key, value in values.items()}


@functools.lru_cache(maxsize=STATEMENTS_CACHED)
def _insert_returning(table: Table, keys: tuple[str, ...]) -> Any:
    values = {key: value_param(table, key) for key in keys}
    return table.insert().values(values).returning(*row_columns(table))


@functools.lru_cache(maxsize=STATEMENTS_CACHED)
def _update_returning(table: Table, keys: tuple[str, ...]) -> Any:
    values = {key: value_param(table, key) for key in keys}
    return (
        table.update()
        .where(table.c.id == bindparam("where_id"))
        .values(values)
        .returning(*row_columns(table))
    )


def insert_returning(table: Table, values: Mapping[str, Any]) -> Any:
    """INSERT one row and return all its columns: the statement is built once per table and
    set of columns (writes repeat a handful of them), then only the values change."""
    statement = _insert_returning(table, tuple(values))
    return Bound(statement, value_params(values))


def update_returning(table: Table, row_id: int, values: Mapping[str, Any]) -> Any:
    """UPDATE the row whose `id` is `row_id` and return all its columns; built like
    `insert_returning`."""
    statement = _update_returning(table, tuple(values))
    return Bound(statement, {"where_id": row_id, **value_params(values)})
