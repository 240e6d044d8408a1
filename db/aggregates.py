"""SQL functions spelled differently by PostgreSQL and SQLite, compiled per dialect."""

from __future__ import annotations

from datetime import datetime
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


class utc_day_start(FunctionElement[datetime]):
    """The UTC midnight starting a DATE's day `days` later, to compare a UTCDateTime column
    with as it is stored (so an index on that column can bound the range)."""

    type = sa.DateTime(timezone=True)
    name = "utc_day_start"
    inherit_cache = True

    def __init__(self, day: Any, days: int) -> None:
        # A literal, not a bind: SQLite spells the shift inside a string.
        super().__init__(day, sa.literal_column(str(int(days)), sa.Integer))


class text_position(FunctionElement[int]):
    """Where `part` first occurs in `text` (from 1), 0 if nowhere: a substring test that no
    index serves, so PostgreSQL's planner reads rows in list order and filters them (its
    guess for `> 0` is a third of the rows), as a page of a common search term should."""

    type = sa.Integer()
    name = "text_position"
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


@compiles(text_position, "postgresql")
def _text_position_pg(element: text_position, compiler: SQLCompiler, **kw: Any) -> str:
    text, part = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"strpos({text}, {part})"


@compiles(text_position)
def _text_position_sqlite(element: text_position, compiler: SQLCompiler, **kw: Any) -> str:
    text, part = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"instr({text}, {part})"


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


@compiles(utc_day_start, "postgresql")
def _utc_day_start_pg(element: utc_day_start, compiler: SQLCompiler, **kw: Any) -> str:
    day, days = (compiler.process(clause, **kw) for clause in element.clauses)
    # asyncpg stores `date.max` / `date.min` as (-)infinity: clamped, a bound stays finite.
    finite = f"LEAST(GREATEST({day}, DATE '0001-01-01'), DATE '9999-12-31')"
    return f"((CAST({finite} AS TIMESTAMP) + {days} * INTERVAL '1 day') AT TIME ZONE 'UTC')"


# Text that sorts after / before every stored SQLite datetime ("YYYY-MM-DD HH:MM:SS.ffffff"):
# SQLite's `datetime()` is NULL outside years 0-9999.
_SQLITE_AFTER_ALL, _SQLITE_BEFORE_ALL = "'9999-99'", "''"


@compiles(utc_day_start)
def _utc_day_start_sqlite(element: utc_day_start, compiler: SQLCompiler, **kw: Any) -> str:
    day, days = (compiler.process(clause, **kw) for clause in element.clauses)
    edge = _SQLITE_AFTER_ALL if int(days) >= 0 else _SQLITE_BEFORE_ALL
    return f"COALESCE(datetime({day}, '{int(days):+d} days'), {edge})"


def split_ids(text: str | None) -> list[int]:
    """Parse a `joined_text` of ids into a sorted list (SQLite does not order the aggregate)."""
    if not text:
        return []
    return sorted({int(part) for part in text.split(SEPARATOR) if part})
