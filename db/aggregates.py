"""SQL functions spelled differently by PostgreSQL and SQLite, compiled per dialect."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

SEPARATOR = ";"
_UNIX_EPOCH_JULIAN_DAY = 2440587.5


class joined_text(FunctionElement[str]):
    """Aggregate: the values as text joined by `SEPARATOR` (NULL when there are none)."""

    type = sa.Text()
    name = "joined_text"
    inherit_cache = True


class epoch_secs(FunctionElement[int]):
    """Seconds since 1970 UTC of a UTCDateTime column."""

    type = sa.BigInteger()
    name = "epoch_secs"
    inherit_cache = True


def _arg(element: FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> str:
    (expr,) = list(element.clauses)
    return compiler.process(expr, **kw)


@compiles(joined_text, "postgresql")
def _joined_text_pg(element: joined_text, compiler: SQLCompiler, **kw: Any) -> str:
    return f"string_agg(CAST({_arg(element, compiler, **kw)} AS TEXT), '{SEPARATOR}')"


@compiles(joined_text)
def _joined_text_sqlite(element: joined_text, compiler: SQLCompiler, **kw: Any) -> str:
    return f"group_concat({_arg(element, compiler, **kw)}, '{SEPARATOR}')"


# Python's datetime range in epoch seconds: PostgreSQL's `infinity` (what asyncpg stores for
# `datetime.max`) is clamped into it, so a stored edge value never fails a read.
_EPOCH_MIN_SECS = -62135596800
_EPOCH_MAX_SECS = 253402300799


@compiles(epoch_secs, "postgresql")
def _epoch_pg(element: epoch_secs, compiler: SQLCompiler, **kw: Any) -> str:
    epoch = f"EXTRACT(EPOCH FROM {_arg(element, compiler, **kw)})"
    return f"CAST(LEAST(GREATEST({epoch}, {_EPOCH_MIN_SECS}), {_EPOCH_MAX_SECS}) AS BIGINT)"


@compiles(epoch_secs)
def _epoch_sqlite(element: epoch_secs, compiler: SQLCompiler, **kw: Any) -> str:
    # julianday, not strftime('%s'): `databases` %-formats the SQL it sends to SQLite.
    days = f"julianday({_arg(element, compiler, **kw)}) - {_UNIX_EPOCH_JULIAN_DAY}"
    return f"CAST(ROUND(({days}) * 86400) AS INTEGER)"


def split_ids(text: str | None) -> list[int]:
    """Parse a `joined_text` of ids into a sorted list (SQLite does not order the aggregate)."""
    if not text:
        return []
    return sorted({int(part) for part in text.split(SEPARATOR) if part})
