"""`?format=csv` on any list: every matching row, filters applied, streamed without pages."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack, aclosing
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import StreamingResponse

from api.listing import ListSpec, Serializer, iterate_all
from db.store import Store
from db.types import dumps

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
ROWS_PER_CHUNK = 200
# A cell starting like a formula runs as one in spreadsheets (CSV injection); quote it.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def wants_csv(request: Request) -> bool:
    """True for `?format=csv` (the DRF format override)."""
    return request.query_params.get("format", "").lower() == "csv"


def csv_cell(value: Any) -> str:
    """One value as text: JSON's spelling for dates, times and nested data; blank for null."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return dumps(value).decode()[1:-1]
    if isinstance(value, list | tuple | dict):
        return dumps(value).decode()
    text = str(value)
    if isinstance(value, str) and text.startswith(_FORMULA_STARTS):
        return "'" + text
    return text


_NUMBERS = frozenset({int, float})  # `str` spells them as `csv_cell` (and the csv writer) do
_TEXT = frozenset({str, type(None)})
_WHEN = frozenset({datetime, date, type(None)})
_BOOLS = frozenset({bool, type(None)})
_BOOL_CELLS = {True: "true", False: "false", None: ""}
# A cell of a column joined with NULs that starts like a formula (a NUL inside a cell can
# only cause a false alarm, which costs the column the cell-by-cell path).
_FORMULA_CELL = re.compile("\x00[" + re.escape("".join(_FORMULA_STARTS)) + "]")
# What makes the csv writer quote a cell (QUOTE_MINIMAL, "," and "\r\n"): the delimiter,
# the quote character, or a character of the line terminator.
_QUOTED_CELL = re.compile('[,"\r\n]')


def _column(values: tuple[Any, ...]) -> list[str]:
    """A column's cells as CSV text: `csv_cell`'s spelling, quoted as the csv writer quotes.

    Converted a column at a time, by the column's set of types: per cell, type dispatch,
    `datetime.isoformat` and the csv writer's character-by-character scan were most of an
    export's CPU. Numbers through `str`; text as it is when no cell starts like a formula
    (one regex over the joined column); dates and times in one orjson call (the spelling
    `csv_cell` uses); anything else cell by cell. Only text and the cell-by-cell kinds can
    hold a comma, quote or line break; such a column is quoted where the writer would.
    """
    kinds = set(map(type, values))
    if kinds <= _NUMBERS:
        return list(map(str, values))
    if None in values and kinds - {type(None)} <= _NUMBERS:
        return ["" if value is None else str(value) for value in values]
    if kinds <= _TEXT:
        if _FORMULA_CELL.search("\x00" + "\x00".join(filter(None, values))) is None:
            return _quoted([value or "" for value in values])
    elif kinds <= _WHEN:
        # '["2026-11-26T14:05:00Z",null]': no cell holds a quote, comma or "null".
        return dumps(list(values)).decode().replace("null", '""')[2:-2].split('","')
    elif kinds <= _BOOLS:
        return list(map(_BOOL_CELLS.__getitem__, values))
    return _quoted(list(map(csv_cell, values)))


def _quoted(cells: list[str]) -> list[str]:
    """Quote (doubling quotes) the cells the csv writer would quote; usually none."""
    if _QUOTED_CELL.search("".join(cells)) is None:
        return cells
    return [
        '"' + cell.replace('"', '""') + '"' if _QUOTED_CELL.search(cell) else cell for cell in cells
    ]


def _render(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], *, header: bool) -> str:
    """Rows as CSV (CRLF line ends), the header first if asked; each row's cells joined
    with commas, as the csv writer would write them (it writes a lone empty cell as `""`:
    one column goes through it)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    if header:
        writer.writerow(columns)
    if not rows:
        return buffer.getvalue()
    if len(columns) < 2:
        writer.writerows([csv_cell(row.get(name)) for name in columns] for row in rows)
        return buffer.getvalue()
    by_column = zip(*[map(row.get, columns) for row in rows], strict=True)
    cells = zip(*map(_column, by_column), strict=True)
    return buffer.getvalue() + "\r\n".join(map(",".join, cells)) + "\r\n"


async def _stream(
    store: Store,
    query: sa.Select[Any],
    *,
    spec: ListSpec,
    params: QueryParams,
    serialize: Serializer,
    columns: Sequence[str] | None,
    extra_where: Sequence[sa.ColumnElement[bool]],
) -> AsyncIterator[str]:
    async with AsyncExitStack() as stack:
        conn = await stack.enter_async_context(store.read_connection())
        if store.is_postgres:
            # One snapshot for every batch: no row skipped or repeated while others write.
            # (SQLite reads stay outside a transaction so a slow download never blocks writers.)
            await stack.enter_async_context(
                conn.transaction(isolation="repeatable_read", readonly=True)
            )
        chunk: list[dict[str, Any]] = []
        header = True
        rows = iterate_all(
            conn, query, spec=spec, params=params, extra_where=extra_where, cursor=store.is_postgres
        )
        # Closed before the transaction ends, whatever stops the loop (`conn.iterate` holds
        # a savepoint while it runs).
        async for row in await stack.enter_async_context(aclosing(rows)):
            chunk.append(serialize(row))
            if columns is None:
                columns = list(chunk[0])
            if len(chunk) >= ROWS_PER_CHUNK:
                yield _render(chunk, columns, header=header)
                chunk, header = [], False
        if columns is not None and (chunk or header):
            yield _render(chunk, columns, header=header)


def csv_response(
    store: Store,
    query: sa.Select[Any],
    *,
    spec: ListSpec,
    params: QueryParams,
    serialize: Serializer,
    filename: str,
    columns: Sequence[str] | None = None,
    extra_where: Sequence[sa.ColumnElement[bool]] = (),
) -> StreamingResponse:
    """Stream `query` (visibility already applied) as CSV with the list's filters and ordering.

    Columns are `columns`, else the keys of the serialized representation; with no rows and no
    `columns` the body is empty. Bad filter values raise 400 here, before streaming starts.
    """
    spec.where(params)
    return StreamingResponse(
        _stream(
            store,
            query,
            spec=spec,
            params=params,
            serialize=serialize,
            columns=columns,
            extra_where=extra_where,
        ),
        media_type=CSV_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
