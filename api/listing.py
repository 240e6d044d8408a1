"""List machinery shared by every collection: filters, search, ordering, DRF pagination."""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from time import monotonic
from typing import Any, cast
from urllib.parse import urlencode
from weakref import WeakKeyDictionary

import sqlalchemy as sa
from databases.core import Connection
from sqlalchemy.sql import visitors
from sqlalchemy.sql.selectable import Exists, ScalarSelect
from sqlalchemy.sql.util import ClauseAdapter
from sqlalchemy.util import LRUCache
from starlette.datastructures import URL, QueryParams

from db.aggregates import text_position
from db.any_of import ValueList, any_of, in_rows, listable
from db.statements import bound
from db.tables import events
from domain.errors import NotFound, ValidationFailed
from domain.limits import INT_MAX, check_date, check_datetime, check_text, parse_int

DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 200
_TRUE = {"true", "1", "yes", "on", "True"}
_FALSE = {"false", "0", "no", "off", "False"}

Serializer = Callable[[Mapping[str, Any]], dict[str, Any]]
OrderKey = tuple[sa.ColumnElement[Any], bool]  # (expression, descending)
_TOTAL = "_bms_list_total"  # the extra column carrying the list's count (serializers skip it)
# Bind names of a cached page statement (filters bind as `_bms_filter_<name>`).
_SEARCH, _LIMIT, _OFFSET = "_bms_search", "_bms_limit", "_bms_offset"
_SEARCH_TERM = "_bms_search_term"  # the term itself, beside its LIKE pattern (`_SEARCH`)
PAGE_STATEMENTS_CACHED = 500
_VERSION = "_bms_list_version"  # the newest event id of the list's topic, beside each row
COUNTS_CACHED = 2000
PAGE_URLS_CACHED = 1000
_NO_VALUE: Any = object()
_ONE = sa.literal_column("1", sa.Integer)
_TOPIC_NAME = re.compile(r"[a-z][a-z-]*")
# A cached count is used only while its topic's newest event id is unchanged; this bounds
# how long a write that bypassed the unit of work (manual SQL) could leave it stale.
COUNT_MAX_AGE_SECS = 30.0
# A search last counted at this many rows or fewer reads the spec's `search_index` (see
# `_matches_first`); above it, the list order's index until a page is full is cheaper.
SEARCH_FEW_ROWS = 500
# A page that skips at least this many rows picks its ids first (`page_select`, `ids_first`):
# the skipped rows are then index entries, not table rows read and thrown away. Nearer the
# top, the 50 lookups by id that this costs are more than the rows it saves.
DEEP_PAGE_OFFSET = 500


def _parse_bool(raw: str) -> bool:
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ValueError("Enter true or false.")


def _parse_date(raw: str) -> date:
    try:
        value = date.fromisoformat(raw)
    except ValueError:
        raise ValueError("Enter a valid date (YYYY-MM-DD).") from None
    return check_date(value)


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
    return check_datetime(value)


# Choice values are written into SQL (`Filter.compare_inlined`): letters, digits, _ and -.
_PLAIN_CHOICE = re.compile(r"[A-Za-z0-9_-]+")


def _written_in(value: str, kind: sa.types.TypeEngine[Any], allowed: re.Pattern[str]) -> Any:
    """`value` written into the statement as SQL text, not bound, so that a generic plan
    sees it. Only the code's own constants come here (choices, topics); `allowed` holds
    no quote, checked here as well as where they are declared."""
    if not allowed.fullmatch(value):
        raise ValueError(f"not written into SQL: {value!r}")
    return sa.literal_column(f"'{value}'", kind)


def _search_pattern(term: str) -> str:
    """A LIKE pattern matching `term` anywhere, its wildcards escaped."""
    return "%" + re.sub(r"([\\%_])", r"\\\1", term) + "%"


_Present = tuple[str, bool, tuple[str, ...] | None]  # a filter in a shape (`ListSpec.shape`)


@dataclass(frozen=True)
class Filter:
    """A query parameter mapped to a column; `op` is `eq` (comma = any of), `gte` or `lte`."""

    name: str
    column: sa.ColumnElement[Any]
    kind: str = "int"  # int | bool | str | choice | date | datetime
    op: str = "eq"
    choices: Sequence[str] = ()
    field: str | None = None  # the representation field it selects on, when not `name`

    def parse(self, raw: str) -> Any:
        if self.kind == "int":
            return parse_int(raw)
        if self.kind == "bool":
            return _parse_bool(raw)
        if self.kind == "date":
            return _parse_date(raw)
        if self.kind == "datetime":
            return _parse_datetime(raw)
        check_text(raw)
        if self.kind == "choice" and raw not in self.choices:
            raise ValueError(f'Select a valid choice. "{raw}" is not one of the available choices.')
        return raw

    def __post_init__(self) -> None:
        unsafe = [c for c in self.choices if not _PLAIN_CHOICE.fullmatch(c)]
        if self.kind == "choice" and unsafe:  # a declaration's mistake, found at import
            raise ValueError(f"{self.name}: choices are written into SQL, not {unsafe!r}")

    @property
    def inlined(self) -> bool:
        """Choices are written into the statement, not bound: see `compare_inlined`."""
        return self.kind == "choice" and self.op == "eq"

    def values(self, raw: str) -> list[Any]:
        """The parsed values of one parameter; several only for `eq` (any of)."""
        if self.op != "eq":
            return [self.parse(raw.strip())]
        values = [self.parse(part.strip()) for part in raw.split(",") if part.strip()]
        if not values:
            raise ValueError("Enter a value.")
        return values

    def compare(self, value: Any, *, many: bool = False) -> sa.ColumnElement[bool]:
        """The clause for a value (a literal or a bind placeholder); `many`: any of a list."""
        if self.op == "eq":
            if not many:
                return self.column == value
            return any_of(self.column, value) if listable(self.column) else self.column.in_(value)
        return self.column >= value if self.op == "gte" else self.column <= value

    def compare_inlined(self, values: Sequence[str]) -> sa.ColumnElement[bool]:
        """The column is one of `values` (checked choices), written into the statement.

        PostgreSQL plans a prepared statement generically after a few runs, and a generic
        plan guesses that `status = ANY($1)` matches most rows: for a combination matching
        none (`status=open,acknowledged&priority=high,critical` on a quiet night) it read
        the whole table in list order, 40 ms at 100,000 tickets. Written out, the values meet
        the column statistics (and those of status and priority together); a choice has few
        values, so its statements stay few (one per set of values asked for)."""
        literals = [_written_in(value, self.column.type, _PLAIN_CHOICE) for value in values]
        if len(literals) == 1:
            return self.column == literals[0]
        return self.column.in_(literals)

    def list_param(self, value: Any = _NO_VALUE) -> sa.BindParameter[Any]:
        """The placeholder of several values: one parameter when `any_of` takes the column."""
        options: dict[str, Any] = (
            {"type_": ValueList(self.column.type)} if listable(self.column) else {"expanding": True}
        )
        if value is not _NO_VALUE:
            options["value"] = value
        return sa.bindparam(self.bind_name, **options)

    @property
    def bind_name(self) -> str:
        return f"_bms_filter_{self.name}"


@dataclass(frozen=True)
class ListSpec:
    """What a collection can be filtered, searched and ordered by."""

    filters: Sequence[Filter] = ()
    search: Sequence[sa.ColumnElement[Any]] = ()
    ordering: Mapping[str, sa.ColumnElement[Any]] = field(default_factory=dict)
    default_ordering: Sequence[str] = ()
    id_column: sa.ColumnElement[Any] | None = None
    # The `search` columns lowered into one text (db/tables.py, `SEARCH_TEXT`): the lowered
    # term is looked for in it instead of an ILIKE per column (`_search_clause`); same rows.
    search_text: sa.ColumnElement[str] | None = None
    # A PostgreSQL index serving the search (trigrams, pg_trgm): read by a search known to
    # match few rows, when the database has it (`paginate`'s `search_index`).
    search_index: str | None = None

    def where(self, params: QueryParams) -> list[sa.ColumnElement[bool]]:
        """WHERE clauses from the query string; 400 keyed by filter name on bad values."""
        shape, values = self.shape(params)
        return self.shaped_where(shape, values)

    def order_by(self, params: QueryParams) -> list[sa.ColumnElement[Any]]:
        return _order_terms(self.order_keys(params))

    def order_keys(self, params: QueryParams) -> list[OrderKey]:
        """The list's ordering as (expression, descending) pairs, ties broken on `-id`."""
        return self._order_keys(self.ordering_names(params))

    def ordering_names(self, params: QueryParams) -> tuple[str, ...]:
        """The requested known ordering fields (`-` = descending), else the default."""
        requested = [p.strip() for p in params.get("ordering", "").split(",") if p.strip()]
        known = [p for p in requested if p.lstrip("-") in self.ordering]
        return tuple(known or self.default_ordering)

    def _order_keys(self, names: Sequence[str]) -> list[OrderKey]:
        keys = [(self.ordering[name.lstrip("-")], name.startswith("-")) for name in names]
        if self.id_column is not None:
            keys.append((self.id_column, True))
        return keys

    def shape(self, params: QueryParams) -> tuple[Hashable, dict[str, Any]]:
        """The query string as a statement shape plus its bind values (400 as `where`)."""
        # (filter, several values?, the values when written into the statement, else None)
        present: list[_Present] = []
        values: dict[str, Any] = {}
        errors: dict[str, list[str]] = {}
        for spec in self.filters:
            raw = params.get(spec.name)
            if raw is None or raw == "":
                continue
            try:
                parsed = spec.values(raw)
            except ValueError as exc:
                errors[spec.name] = [str(exc)]
                continue
            many = len(parsed) > 1
            if spec.inlined:
                present.append((spec.name, many, tuple(sorted(set(parsed)))))
                continue
            present.append((spec.name, many, None))
            values[spec.bind_name] = parsed if many else parsed[0]
        if errors:
            raise ValidationFailed(errors)
        term = params.get("search", "").strip()
        try:
            check_text(term)
        except ValueError as exc:
            raise ValidationFailed.on("search", str(exc)) from None
        searched = bool(term and self.search)
        if searched:
            values[_SEARCH] = _search_pattern(term)
            values[_SEARCH_TERM] = term
        return (tuple(present), searched, self.ordering_names(params)), values

    def shaped_where(
        self,
        shape: Hashable,
        values: Mapping[str, Any] | None = None,
        *,
        search_by_index: bool = False,
    ) -> list[sa.ColumnElement[bool]]:
        """WHERE clauses of a shape: bound to `values`, or placeholders bound per execution.

        `search_by_index`: a search the spec's `search_index` can serve (a count, a page of
        few matches); else one it cannot, read in list order (`_search_clause`)."""
        present, searched, _ = cast(tuple[tuple[_Present, ...], bool, Any], shape)
        by_name = {spec.name: spec for spec in self.filters}

        def param(name: str, **options: Any) -> sa.BindParameter[Any]:
            if values is None:
                return sa.bindparam(name, **options)
            return sa.bindparam(name, values[name], **options)

        def placeholder(spec: Filter, many: bool) -> sa.BindParameter[Any]:
            if not many:
                return param(spec.bind_name)
            return spec.list_param() if values is None else spec.list_param(values[spec.bind_name])

        clauses = [
            by_name[name].compare(placeholder(by_name[name], many), many=many)
            if inlined is None
            else by_name[name].compare_inlined(inlined)
            for name, many, inlined in present
        ]
        if searched:
            clauses.append(self._search_clause(param, by_index=search_by_index))
        return clauses

    def _search_clause(
        self, param: Callable[..., sa.BindParameter[Any]], *, by_index: bool
    ) -> sa.ColumnElement[bool]:
        """The term in any `search` column, whatever its case: ILIKE on each column, or, with
        `search_text`, the lowered term in it: by LIKE, which its trigram index serves, or,
        `by_index` false, by position, which no index serves. PostgreSQL's generic plan
        (asyncpg prepares every statement) guesses a LIKE matches few rows and would read
        the trigram index and sort every match even for a term in every row."""
        if self.search_text is None:
            pattern = param(_SEARCH, type_=sa.String)
            return sa.or_(*(col.ilike(pattern, escape="\\") for col in self.search))
        if by_index:
            lowered = _once(sa.func.lower(param(_SEARCH, type_=sa.String)))
            return self.search_text.like(lowered, escape="\\")
        term = _once(sa.func.lower(param(_SEARCH_TERM, type_=sa.String)))
        return text_position(self.search_text, term) > 0

    def shaped_order_keys(self, shape: Hashable) -> list[OrderKey]:
        return self._order_keys(shape[2])  # type: ignore[index]  # shapes are our tuples


def _once(value: sa.ColumnElement[Any]) -> sa.ScalarSelect[Any]:
    """`value` as a scalar subquery, which the database computes once per statement.

    Under a generic plan (the one PostgreSQL keeps for a first page), a function of a bound
    parameter in a filter is computed again for every row the filter reads: `lower($1)`
    for the ~4,800 rows a 1% search reads cost 0.9 ms a page (2.0 -> 1.2 ms in psql).
    """
    return sa.select(value).scalar_subquery()


def page_numbers(params: QueryParams) -> tuple[int, int]:
    """Return (page, page_size); a page that is not a positive integer is 404 like DRF."""
    try:
        page = int(params.get("page", "1"))
    except ValueError:
        raise NotFound("Invalid page.") from None
    if not 1 <= page <= INT_MAX:  # no list has more pages than rows an id can number
        raise NotFound("Invalid page.")
    try:
        size = int(params.get("page_size", str(DEFAULT_PAGE_SIZE)))
    except ValueError:
        size = DEFAULT_PAGE_SIZE
    if size < 1:  # DRF: a page size that is not a positive integer means the default
        size = DEFAULT_PAGE_SIZE
    return page, min(size, MAX_PAGE_SIZE)


# A list URL without its `page` parameter, per URL and query (see `_page_url`).
_PAGE_URL_BASES: LRUCache[Hashable, str] = LRUCache(PAGE_URLS_CACHED)


def _page_url(url: URL, params: QueryParams, page: int | None) -> str | None:
    """The URL of another page of the list: `url` with its `page` parameter replaced.

    The URL without `page` is built once per distinct request URL: re-encoding the query
    string cost a dashboard's list page about as much as serializing ten of its rows. The
    page number goes last, as `urlencode` would put it.
    """
    if page is None:
        return None
    key = (str(url), tuple(params.multi_items()))
    base = _PAGE_URL_BASES.get(key)
    if base is None:
        items = [(k, v) for k, v in params.multi_items() if k != "page"]
        base = _PAGE_URL_BASES[key] = str(url.replace(query=urlencode(items)))
    if page == 1:
        return base
    return f"{base}{'&' if '?' in base else '?'}page={page}"


@dataclass(frozen=True)
class _Shared:
    query: sa.Select[Any]
    topic: str | None


@dataclass(frozen=True)
class _PageStatements:
    page: sa.Select[Any]  # rows, with the total (no topic) or the topic's version
    count: sa.Select[Any] | None  # (total, version), run when no cached total is current
    few: sa.Select[Any] | None = None  # `page` for a search matching few rows (a topic's)
    deep: sa.Select[Any] | None = None  # `page` for a page past DEEP_PAGE_OFFSET, ids first


# Base queries that are the same object for every request (see `shared_query`).
_SHARED: dict[int, _Shared] = {}
# (query, spec, shape) ids → (spec, statements with bind placeholders).
_PAGES: LRUCache[Hashable, tuple[ListSpec, _PageStatements]] = LRUCache(PAGE_STATEMENTS_CACHED)
# Per database: (query, spec, shape, filter values) → (topic version, total, when counted).
_COUNTS: WeakKeyDictionary[Any, LRUCache[Hashable, tuple[Any, int, float]]] = WeakKeyDictionary()


def shared_query(query: sa.Select[Any], *, changes_on: str | None = None) -> sa.Select[Any]:
    """Mark a base list query built once (a module constant): its pages are built once per shape.

    `paginate` then skips building the statement and its cache key on each request; a query
    built per request (visibility by actor) is built per request as before.

    `changes_on`: the event topic that every change to the query's rows emits (the unit of
    work's rule). The list's total is then counted once per newest event id of that topic:
    each page reads that id in the same statement as its rows, and reuses the total counted
    at that id, which is exact for the page's snapshot because any change committed since
    would have a newer event. Counting thousands of matching rows was most of the database's
    work per page.
    """
    _SHARED[id(query)] = _Shared(query, changes_on)  # held for good: its id is never reused
    return query


def _order_terms(keys: Sequence[OrderKey]) -> list[sa.ColumnElement[Any]]:
    return [column.desc() if descending else column.asc() for column, descending in keys]


def _has_subquery(column: sa.ColumnElement[Any]) -> bool:
    if isinstance(column, sa.Column):  # most of a list's columns: checked per request
        return False
    return any(isinstance(e, ScalarSelect | Exists) for e in visitors.iterate(column))


def _page_id(
    query: sa.Select[Any],
    order: Sequence[OrderKey],
    id_column: sa.ColumnElement[Any] | None,
    *,
    ids_first: bool = False,
) -> sa.ColumnElement[Any] | None:
    """The id a page of `query` is chosen by first: if it has per-row subquery columns, or
    always with `ids_first`."""
    if id_column is None or any(_has_subquery(column) for column, _ in order):
        return None
    if ids_first:
        return id_column
    per_row = any(_has_subquery(column) for column in query.selected_columns)
    return id_column if per_row else None


def _count(filtered: sa.Select[Any], page_id: sa.ColumnElement[Any] | None) -> sa.Select[Any]:
    """The number of rows of `filtered` (counted on their ids when per-row columns ride)."""
    rows = filtered if page_id is None else filtered.with_only_columns(page_id)
    return sa.select(sa.func.count()).select_from(rows.order_by(None).subquery())


def page_select(
    query: sa.Select[Any],
    where: Sequence[sa.ColumnElement[bool]],
    order: Sequence[OrderKey],
    *,
    limit: Any,
    offset: Any,
    id_column: sa.ColumnElement[Any] | None,
    extra: Sequence[sa.ColumnElement[Any]] = (),
    total: bool = False,
    ids_first: bool = False,
) -> sa.Select[Any]:
    """One page of `query`: its rows filtered, ordered and cut, plus `extra` columns and,
    with `total`, the list's count on every row (an uncorrelated subquery, run once).

    `ids_first` (a page far down the list): the page's ids are chosen first, as below, so
    the rows skipped are read from an index that holds the order and the id (`?page=40`
    read 2,000 table rows to return 50) and only the page's own rows from the table.

    A column of `query` holding a subquery (a correlated one runs once per row: a request's
    conflicting shifts, an event's attendees) is computed for the page's rows only: the
    page's ids are chosen first, on the bare rows (`id IN (SELECT id ... LIMIT)`, see
    `db.any_of.in_rows`), and the statement reads those rows by id with all their columns.
    SQLite computed such a column for every row it read before its sort: the whole table
    when the ordering has ties. (PostgreSQL already delays it past a top-N sort.) `query`
    itself is reused, not cloned, so a list built per request pays little for this.
    """
    filtered = query.where(*where)
    terms = _order_terms(order)
    page_id = _page_id(query, order, id_column, ids_first=ids_first)
    if total:
        extra = [*extra, _count(filtered, page_id).scalar_subquery().label(_TOTAL)]
    if page_id is None:
        return filtered.add_columns(*extra).order_by(*terms).limit(limit).offset(offset)
    # correlate(None): the ids come from a FROM of their own, not the outer statement's.
    ids = filtered.with_only_columns(page_id).order_by(*terms).limit(limit).offset(offset)
    return query.where(in_rows(page_id, ids.correlate(None))).add_columns(*extra).order_by(*terms)


def _topic_version(topic: str) -> sa.ScalarSelect[Any]:
    """The newest event id of a topic: one probe of `ix_events_topic_id`, read backwards.

    Not `max(id)`: PostgreSQL turns that into the same probe only when its statistics say
    the topic has many events; statistics taken when it had few (a new database, a burst
    of writes before the next ANALYZE) made every list page aggregate all of the topic's
    events: 2.8 ms a page at 5,000 events, beside 1.7 ms for the 1% search's page itself.
    """
    # The topic written in, not bound: a generic plan blind to it read the events' primary
    # key backwards, filtering by topic, through every event of a quiet topic's newer ones.
    return (
        sa.select(events.c.id)
        .where(events.c.topic == _written_in(topic, sa.String(), _TOPIC_NAME))
        .order_by(events.c.id.desc())
        .limit(_ONE)  # written in: a generic plan prices `LIMIT $1` as a tenth of the rows
        .scalar_subquery()
    )


def _paged(statement: sa.Select[Any]) -> sa.Select[Any]:
    return statement.limit(sa.bindparam(_LIMIT, type_=sa.Integer)).offset(
        sa.bindparam(_OFFSET, type_=sa.Integer)
    )


def _matches_first(
    filtered: sa.Select[Any], order_by: Sequence[sa.ColumnElement[Any]], version: Any
) -> sa.Select[Any]:
    """The page's rows found first, then ordered: `SELECT * FROM (matches OFFSET 0) ORDER BY`.

    The OFFSET keeps PostgreSQL from merging the subquery into the outer query, so it plans
    the match alone (the trigram index for a rare term) and sorts the few rows found. The
    plain page lets it read the list order's index instead, filtering each row until a page
    is full: right for a common term, and for a rare one a read of the whole table, which
    it picks because asyncpg's prepared statements get a generic plan, blind to the term.
    Same columns (names included) and the same order, so the same page.
    """
    matched = filtered.offset(0).subquery("matched")
    adapt = ClauseAdapter(matched).traverse
    return sa.select(*matched.c, version.label(_VERSION)).order_by(*map(adapt, order_by))


def first_page_size(page: int, size: int, values: Mapping[str, Any]) -> int | None:
    """The page size to write into a page's statement (`_page_statements`), or None.

    Only for a first page whose filters bind no values: a generic plan is blind to them,
    and for a value that matches few rows (a quiet facility, a new assignee) it would read
    the list order's index through the whole table; such pages keep being planned for
    their values. Choice filters are written in already, and a search term's plain page
    is read in list order either way.
    """
    if page != 1 or any(name not in (_SEARCH, _SEARCH_TERM) for name in values):
        return None
    return size


def _page_statements(
    shared: _Shared, spec: ListSpec, shape: Hashable, *, first_page: int | None = None
) -> _PageStatements:
    """The statements of a shared query for one query-string shape, built once.

    `first_page`: the page size of a first page, written into `page` (no OFFSET). With
    `LIMIT $1 OFFSET $2`, PostgreSQL prices a generic plan as if it read a tenth of the
    table past an unknown offset, so it planned every list request anew (about half of a
    typical first page's PostgreSQL time); with the size in the statement and no offset
    (and the version's `LIMIT 1` written in too) it keeps one generic plan. Page sizes
    are few (`page_size` is capped); pages past the first, and first pages whose filters
    bind values, keep their parameters (`first_page_size`).
    """
    key = (id(shared.query), id(spec), shape, first_page)
    found = _PAGES.get(key)
    if found is not None and found[0] is spec:
        return found[1]
    where = spec.shaped_where(shape)
    order = spec.shaped_order_keys(shape)
    extra, count, few = [], None, None
    if shared.topic is not None:
        version = _topic_version(shared.topic)
        extra = [version.label(_VERSION)]
        filtered = shared.query.where(*spec.shaped_where(shape, search_by_index=True))
        page_id = _page_id(shared.query, order, spec.id_column)
        count = _count(filtered, page_id).add_columns(version.label(_VERSION))
        if spec.search_index is not None and shape[1]:  # type: ignore[index]  # searched
            few = _paged(_matches_first(filtered, _order_terms(order), version))

    limit: sa.ColumnElement[int] = sa.bindparam(_LIMIT, type_=sa.Integer)
    offset: sa.ColumnElement[int] | None = sa.bindparam(_OFFSET, type_=sa.Integer)
    if first_page is not None:
        limit, offset = sa.literal_column(str(int(first_page)), sa.Integer), None

    def paged(*, ids_first: bool) -> sa.Select[Any]:
        return page_select(
            shared.query,
            where,
            order,
            limit=limit,
            offset=offset,
            id_column=spec.id_column,
            extra=extra,
            total=shared.topic is None,
            ids_first=ids_first,
        )

    # None when `page` already picks its ids first, or cannot (no id, a subquery ordering),
    # or for a first page, which is never deep.
    ids_first_differs = (
        first_page is None
        and _page_id(shared.query, order, spec.id_column) is None
        and (_page_id(shared.query, order, spec.id_column, ids_first=True) is not None)
    )
    deep = paged(ids_first=True) if ids_first_differs else None
    statements = _PageStatements(paged(ids_first=False), count, few, deep)
    _PAGES[key] = (spec, statements)
    return statements


def _hashable(value: Any) -> Hashable:
    return tuple(value) if isinstance(value, list) else value


def _counts(scope: object) -> LRUCache[Hashable, tuple[Any, int, float]]:
    counts = _COUNTS.get(scope)  # ids and versions are those of one database (its Store)
    if counts is None:
        counts = _COUNTS[scope] = LRUCache(COUNTS_CACHED)
    return counts


def _remember_total(scope: object, key: Hashable, version: Any, total: int) -> None:
    _counts(scope)[key] = (version, total, monotonic())


async def _versioned_total(
    conn: Connection,
    count: sa.Select[Any],
    key: Hashable,
    values: dict[str, Any],
    version: Any,
    scope: object,
) -> int:
    """The list's total at the page's topic version: cached, or counted now and cached."""
    now = monotonic()
    counts = _counts(scope)
    cached = counts.get(key)
    if cached is not None and cached[0] == version and now - cached[2] < COUNT_MAX_AGE_SECS:
        return cached[1]
    row = await conn.fetch_one(bound(count, **values))
    assert row is not None
    total, counted_at = row[0], row[_VERSION]
    counts[key] = (counted_at, total, now)
    return total


async def paginate(
    conn: Connection,
    query: sa.Select[Any],
    *,
    spec: ListSpec,
    params: QueryParams,
    url: URL,
    serialize: Serializer,
    extra_where: Sequence[sa.ColumnElement[bool]] = (),
    counts_scope: object | None = None,
    search_index: bool = False,
) -> dict[str, Any]:
    """Run a filtered, ordered, paginated query and return DRF's page object.

    `counts_scope` (the Store `conn` came from) keeps the totals of shared list queries
    cached per database, valid while their topic's newest event id is unchanged.
    `search_index`: the database has `spec.search_index`; a search whose last count (at any
    version) was at most `SEARCH_FEW_ROWS` then finds its matches first (`_matches_first`).
    """
    page, size = page_numbers(params)
    statements: _PageStatements | None = None
    if extra_where or id(query) not in _SHARED:
        rows = await conn.fetch_all(
            page_select(
                query,
                [*spec.where(params), *extra_where],
                spec.order_keys(params),
                limit=size,
                offset=(page - 1) * size,
                id_column=spec.id_column,
                total=True,
                ids_first=(page - 1) * size >= DEEP_PAGE_OFFSET,
            )
        )
    else:
        shape, values = spec.shape(params)
        statements = _page_statements(
            _SHARED[id(query)], spec, shape, first_page=first_page_size(page, size, values)
        )
        key = (id(query), id(spec), shape, *((k, _hashable(v)) for k, v in sorted(values.items())))
        page_values = {**values, _LIMIT: size, _OFFSET: (page - 1) * size}
        statement = statements.page
        if statements.few is not None and search_index and counts_scope is not None:
            counts = _COUNTS.get(counts_scope)
            seen = None if counts is None else counts.get(key)
            if seen is not None and seen[1] <= SEARCH_FEW_ROWS:
                statement = statements.few
        if (
            statement is statements.page
            and statements.deep is not None
            and page_values[_OFFSET] >= DEEP_PAGE_OFFSET
        ):
            statement = statements.deep
        rows = await conn.fetch_all(bound(statement, **page_values))
    # An empty page is page 1 of nothing, or past the end.
    if not rows and page > 1:
        raise NotFound("Invalid page.")
    if not rows:
        count = 0
    elif statements is None or statements.count is None:
        count = rows[0][_TOTAL]
    elif len(rows) < size:
        # The last page, read in one snapshot with its version: the total needs no count
        # (a search matching few rows, a narrow filter: one round trip, not two).
        count = (page - 1) * size + len(rows)
        if counts_scope is not None:
            _remember_total(counts_scope, key, rows[0][_VERSION], count)
    else:
        if counts_scope is None:  # nothing to cache the total in: count now
            counted = await conn.fetch_one(bound(statements.count, **values))
            assert counted is not None
            count = counted[0]
        else:
            version = rows[0][_VERSION]
            count = await _versioned_total(
                conn, statements.count, key, values, version, counts_scope
            )
    last_page = max(1, -(-count // size))
    return {
        "count": count,
        "next": _page_url(url, params, page + 1 if page < last_page else None),
        "previous": _page_url(url, params, page - 1 if page > 1 else None),
        "results": [serialize(row) for row in rows],  # type: ignore[arg-type]  # Records read like mappings
    }


def iterate_all(
    conn: Connection,
    query: sa.Select[Any],
    *,
    spec: ListSpec,
    params: QueryParams,
    extra_where: Sequence[sa.ColumnElement[bool]] = (),
    batch_size: int = 1000,
    cursor: bool = False,
) -> AsyncGenerator[Any, None]:
    """Every matching row in list order (CSV export).

    `cursor` (PostgreSQL, inside a transaction): one statement read through a server-side
    cursor (`conn.iterate`). Else keyset-free batches of `batch_size` (SQLite: no transaction
    is held open for a slow download), each of which makes the database skip the rows
    before it.
    """
    filtered = query.where(*spec.where(params), *extra_where).order_by(*spec.order_by(params))
    if cursor:
        return conn.iterate(filtered)
    return _in_batches(conn, filtered, batch_size)


async def _in_batches(
    conn: Connection, filtered: sa.Select[Any], size: int
) -> AsyncGenerator[Any, None]:
    offset = 0
    while True:
        rows = await conn.fetch_all(filtered.limit(size).offset(offset))
        for row in rows:
            yield row
        if len(rows) < size:
            return
        offset += size
