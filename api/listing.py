"""List machinery shared by every collection: filters, search, ordering, DRF pagination."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from databases.core import Connection
from starlette.datastructures import URL, QueryParams

from domain.errors import NotFound, ValidationFailed

DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 200
_TRUE = {"true", "1", "yes", "on", "True"}
_FALSE = {"false", "0", "no", "off", "False"}

Serializer = Callable[[Mapping[str, Any]], dict[str, Any]]
_TOTAL = "_bms_list_total"  # the extra column carrying the list's count (serializers skip it)


def _parse_int(raw: str) -> int:
    if not re.fullmatch(r"-?\d{1,18}", raw):
        raise ValueError("Enter a whole number.")
    return int(raw)


def _parse_bool(raw: str) -> bool:
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ValueError("Enter true or false.")


def _parse_date(raw: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ValueError("Enter a valid date (YYYY-MM-DD).") from None


def _parse_datetime(raw: str) -> datetime:
    """An aware ISO 8601 datetime, or a plain date meaning its midnight UTC (as DRF does)."""
    raw = raw.replace(" ", "+")  # "+" in an offset often arrives as a space
    try:
        if len(raw) == len("YYYY-MM-DD"):
            return datetime.combine(date.fromisoformat(raw), time(), tzinfo=UTC)
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise ValueError("Enter a valid date/time (ISO 8601 with an offset).") from None
    if value.tzinfo is None:
        raise ValueError("Enter a date/time with a UTC offset.")
    return value


@dataclass(frozen=True)
class Filter:
    """A query parameter mapped to a column; `op` is `eq` (comma = any of), `gte` or `lte`."""

    name: str
    column: sa.ColumnElement[Any]
    kind: str = "int"  # int | bool | str | choice | date | datetime
    op: str = "eq"
    choices: Sequence[str] = ()

    def parse(self, raw: str) -> Any:
        if self.kind == "int":
            return _parse_int(raw)
        if self.kind == "bool":
            return _parse_bool(raw)
        if self.kind == "date":
            return _parse_date(raw)
        if self.kind == "datetime":
            return _parse_datetime(raw)
        if self.kind == "choice" and raw not in self.choices:
            raise ValueError(f'Select a valid choice. "{raw}" is not one of the available choices.')
        return raw

    def clause(self, raw: str) -> sa.ColumnElement[bool]:
        if self.op == "eq":
            values = [self.parse(part.strip()) for part in raw.split(",") if part.strip()]
            if not values:
                raise ValueError("Enter a value.")
            return self.column == values[0] if len(values) == 1 else self.column.in_(values)
        value = self.parse(raw.strip())
        return self.column >= value if self.op == "gte" else self.column <= value


@dataclass(frozen=True)
class ListSpec:
    """What a collection can be filtered, searched and ordered by."""

    filters: Sequence[Filter] = ()
    search: Sequence[sa.ColumnElement[Any]] = ()
    ordering: Mapping[str, sa.ColumnElement[Any]] = field(default_factory=dict)
    default_ordering: Sequence[str] = ()
    id_column: sa.ColumnElement[Any] | None = None

    def where(self, params: QueryParams) -> list[sa.ColumnElement[bool]]:
        """Build WHERE clauses from the query string; 400 keyed by filter name on bad values."""
        clauses: list[sa.ColumnElement[bool]] = []
        errors: dict[str, list[str]] = {}
        for spec in self.filters:
            raw = params.get(spec.name)
            if raw is None or raw == "":
                continue
            try:
                clauses.append(spec.clause(raw))
            except ValueError as exc:
                errors[spec.name] = [str(exc)]
        if errors:
            raise ValidationFailed(errors)
        term = params.get("search", "").strip()
        if term and self.search:
            pattern = "%" + re.sub(r"([\\%_])", r"\\\1", term) + "%"
            clauses.append(sa.or_(*(col.ilike(pattern, escape="\\") for col in self.search)))
        return clauses

    def order_by(self, params: QueryParams) -> list[sa.ColumnElement[Any]]:
        requested = [p.strip() for p in params.get("ordering", "").split(",") if p.strip()]
        known = [p for p in requested if p.lstrip("-") in self.ordering]
        terms: list[sa.ColumnElement[Any]] = []
        for name in known or list(self.default_ordering):
            column = self.ordering[name.lstrip("-")]
            terms.append(column.desc() if name.startswith("-") else column.asc())
        if self.id_column is not None:
            terms.append(self.id_column.desc())
        return terms


def page_numbers(params: QueryParams) -> tuple[int, int]:
    """Return (page, page_size); a page that is not a positive integer is 404 like DRF."""
    try:
        page = int(params.get("page", "1"))
    except ValueError:
        raise NotFound("Invalid page.") from None
    if page < 1:
        raise NotFound("Invalid page.")
    try:
        size = int(params.get("page_size", str(DEFAULT_PAGE_SIZE)))
    except ValueError:
        size = DEFAULT_PAGE_SIZE
    return page, max(1, min(size, MAX_PAGE_SIZE))


def _page_url(url: URL, params: QueryParams, page: int | None) -> str | None:
    if page is None:
        return None
    items = [(k, v) for k, v in params.multi_items() if k != "page"]
    if page > 1:
        items.append(("page", str(page)))
    return str(url.replace(query=urlencode(items)))


async def paginate(
    conn: Connection,
    query: sa.Select[Any],
    *,
    spec: ListSpec,
    params: QueryParams,
    url: URL,
    serialize: Serializer,
    extra_where: Sequence[sa.ColumnElement[bool]] = (),
) -> dict[str, Any]:
    """Run a filtered, ordered, paginated query and return DRF's page object."""
    page, size = page_numbers(params)
    filtered = query.where(*spec.where(params), *extra_where)
    # One round trip: the total rides on every row as an uncorrelated scalar subquery, which
    # the database evaluates once. An empty page is page 1 of nothing, or past the end.
    total = sa.select(sa.func.count()).select_from(filtered.order_by(None).subquery())
    rows = await conn.fetch_all(
        filtered.add_columns(total.scalar_subquery().label(_TOTAL))
        .order_by(*spec.order_by(params))
        .limit(size)
        .offset((page - 1) * size)
    )
    if not rows and page > 1:
        raise NotFound("Invalid page.")
    count = rows[0][_TOTAL] if rows else 0
    last_page = max(1, -(-count // size))
    return {
        "count": count,
        "next": _page_url(url, params, page + 1 if page < last_page else None),
        "previous": _page_url(url, params, page - 1 if page > 1 else None),
        "results": [serialize(row) for row in rows],
    }


async def iterate_all(
    conn: Connection,
    query: sa.Select[Any],
    *,
    spec: ListSpec,
    params: QueryParams,
    extra_where: Sequence[sa.ColumnElement[bool]] = (),
    batch_size: int = 1000,
) -> Any:
    """Yield every matching row in list order, in keyset-free batches (CSV export)."""
    filtered = query.where(*spec.where(params), *extra_where).order_by(*spec.order_by(params))
    offset = 0
    while True:
        rows = await conn.fetch_all(filtered.limit(batch_size).offset(offset))
        for row in rows:
            yield row
        if len(rows) < batch_size:
            return
        offset += batch_size
