"""`column` equals any of a list bound as ONE parameter, so the statement has one shape.

`column.in_(values)` binds an "expanding" parameter: the SQL text depends on how many values
there are, so no statement cache can keep it (db/compiled_cache.py compiles it afresh per
request, which made a two-value list filter cost twice a one-value filter). Here the list is
one parameter: `column = ANY($1)` with an array on PostgreSQL, and
`column IN (SELECT value FROM json_each(?))` with a JSON array on SQLite. Both use the
column's index. Public SQLAlchemy API only (`sqlalchemy.ext.compiler`, `TypeDecorator`).

A filter over a few fixed choices (a status, a priority) is not bound at all: its values are
written into the statement, so PostgreSQL's generic plan sees them (api/listing.py,
`Filter.compare_inlined`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

# Column types whose values survive both encodings as they are (ints, text, booleans).
LISTABLE_TYPES = (sa.Integer, sa.String, sa.Boolean)


class ValueList(sa.TypeDecorator[Sequence[Any]]):
    """A list of `item` values: an array on PostgreSQL, JSON text elsewhere."""

    impl = sa.String
    cache_ok = True

    def __init__(self, item: sa.types.TypeEngine[Any]) -> None:
        super().__init__()
        self.item = item

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.ARRAY(self.item))
        return dialect.type_descriptor(sa.String())

    def process_bind_param(self, value: Sequence[Any] | None, dialect: Dialect) -> Any:
        if value is None or dialect.name == "postgresql":
            return value
        return json.dumps(list(value))


class _AnyOf(FunctionElement[bool]):
    """`column` = any element of the list parameter (compiled per dialect below)."""

    name = "bms_any_of"
    type = sa.Boolean()
    inherit_cache = True


@compiles(_AnyOf)
def _compile_json_each(element: _AnyOf, compiler: SQLCompiler, **kw: Any) -> str:
    column, values = element.clauses
    # Compiled SQL of our own elements (a column and a placeholder), never input text.
    sql = f"{compiler.process(column, **kw)} IN (SELECT value FROM json_each("  # noqa: S608
    return sql + f"{compiler.process(values, **kw)}))"


@compiles(_AnyOf, "postgresql")
def _compile_any(element: _AnyOf, compiler: SQLCompiler, **kw: Any) -> str:
    column, values = element.clauses
    return f"{compiler.process(column, **kw)} = ANY({compiler.process(values, **kw)})"


def listable(column: sa.ColumnElement[Any]) -> bool:
    """Whether `any_of` can take this column's values (else use `column.in_`)."""
    return isinstance(column.type, LISTABLE_TYPES)


def any_of(column: sa.ColumnElement[Any], values: Any) -> sa.ColumnElement[bool]:
    """`column` equals one of `values`: a list, or a `bindparam` of type `ValueList`."""
    if not isinstance(values, sa.BindParameter):
        values = sa.bindparam(None, list(values), type_=ValueList(column.type))
    # A comparison, not a boolean-valued function: SQLite (no native booleans) would get
    # `... IN (SELECT ...) = 1`, which keeps it off the column's index (a scan: 13 ms
    # instead of 0.2 ms for 1% of 100,000 rows).
    return _AnyOf(column, values).as_comparison(1, 2)


class _InRows(FunctionElement[Any]):
    """`column` is one of the values a subquery selects (compiled per dialect below)."""

    name = "bms_in_rows"
    # Not Boolean: SQLite would render `... IN (...) = 1`, which it cannot look up by id.
    type = sa.types.NullType()
    inherit_cache = True


@compiles(_InRows)
def _compile_in(element: _InRows, compiler: SQLCompiler, **kw: Any) -> str:
    column, rows = element.clauses
    return f"{compiler.process(column, **kw)} IN {compiler.process(rows, **kw)}"


@compiles(_InRows, "postgresql")
def _compile_any_array(element: _InRows, compiler: SQLCompiler, **kw: Any) -> str:
    column, rows = element.clauses
    return f"{compiler.process(column, **kw)} = ANY(ARRAY{compiler.process(rows, **kw)})"


def in_rows(column: sa.ColumnElement[Any], rows: sa.Select[Any]) -> sa.ColumnElement[Any]:
    """`column` is one of the values `rows` selects (a page's ids, say).

    PostgreSQL gets `= ANY(ARRAY(SELECT ...))`: the values once, then an index probe each.
    Given `IN (SELECT ...)` it may hash the values and scan the whole table against them.
    """
    return _InRows(column, rows.scalar_subquery())
