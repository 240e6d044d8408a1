"""`?format=csv` on any list: every matching row, filters applied, streamed without pages."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from datetime import UTC, date, datetime
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


def _text_cell(value: str) -> str:
    return "'" + value if value[:1] in _FORMULA_FIRST_CHARS else value


def _when_cell(value: datetime | date) -> str:
    return dumps(value).decode()[1:-1]


def _datetime_cell(value: datetime) -> str:
    """JSON's spelling (`…Z` for UTC, as orjson writes it) without a JSON round trip."""
    if value.tzinfo is UTC:  # what UTCDateTime columns return
        return value.isoformat()[:-6] + "Z"
    return _when_cell(value)


def _json_cell(value: Any) -> str:
    return dumps(value).decode()


# `csv_cell` by exact type, looked up once per cell: the isinstance chain was most of an
# export's CPU. Other types (subclasses) take `csv_cell` itself; the results are the same.
_CELL_BY_TYPE: dict[type, Callable[[Any], str]] = {
    str: _text_cell,
    int: str,
    float: str,
    type(None): lambda value: "",
    bool: lambda value: "true" if value else "false",
    datetime: _datetime_cell,
    date: date.isoformat,
    list: _json_cell,
    tuple: _json_cell,
    dict: _json_cell,
}
_FORMULA_FIRST_CHARS = frozenset(_FORMULA_STARTS)


def _render(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], *, header: bool) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    if header:
        writer.writerow(columns)
    cell = _CELL_BY_TYPE.get
    writer.writerows(
        [(cell(type(value)) or csv_cell)(value) for value in map(row.get, columns)] for row in rows
    )
    return buffer.getvalue()


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
        conn = await stack.enter_async_context(store.connection())
        if store.is_postgres:
            # One snapshot for every batch: no row skipped or repeated while others write.
            # (SQLite reads stay outside a transaction so a slow download never blocks writers.)
            await stack.enter_async_context(
                conn.transaction(isolation="repeatable_read", readonly=True)
            )
        chunk: list[dict[str, Any]] = []
        header = True
        async for row in iterate_all(
            conn, query, spec=spec, params=params, extra_where=extra_where
        ):
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
