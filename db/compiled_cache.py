"""Compile each statement shape once: `databases` backends with a compiled-statement cache.

`databases` compiles every SQLAlchemy statement from scratch on every execution, which cost a
quarter to a third of the server's CPU on the REST benchmark. SQLAlchemy can do better: a
statement's cache key names its shape (tables, columns, operators) and lists its bound
values separately, and a statement compiled *with* a cache key can bind the values of any
other statement of the same shape (`construct_params(extracted_parameters=...)`), which is how
SQLAlchemy's own engine caches. The backends below keep an LRU of compiled statements per
backend (one dialect each) and bind new values into them.

Hot queries can skip building the statement too: build it once with `sa.bindparam(name)`
placeholders and run `conn.fetch_one(bound(STATEMENT, name=value))`. Such a statement object
is found by identity, not by its cache key (hashing a write's nested key cost more than
compiling once), and its values go straight to their positions (`Prepared`): no
`construct_params` per execution.

Not cached, compiled as `databases` always did: statements without a cache key (DDL, text
without one), and statements with "expanding" (`IN` lists) or literal-execute parameters,
whose SQL text depends on the values and not only on the shape.

Private APIs relied on (tests/test_fast_path_contracts.py checks them; FAST_PATHS=0 runs
db/database.py's plain path instead): SQLAlchemy's `ClauseElement._generate_cache_key`,
`SQLCompiler._result_columns`, `_bind_processors`, `bind_names`, `escaped_bind_names`,
`_collect_params`, `_ordered_columns`,
`_textual_ordered_columns`, `_ad_hoc_textual`, `_loose_column_name_matching`,
`TypeEngine._cached_result_processor`; `databases`' `PostgresConnection._compile`,
`._connection`, `._dialect`, `SQLiteConnection._compile` and its `CompilationContext`,
`PostgresBackend._dialect`, `SQLiteBackend._pool`, `Record(row, result_columns, dialect,
column_maps)` and `create_column_maps`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from databases import Database
from databases.backends.common.records import Record, create_column_maps
from databases.backends.postgres import PostgresBackend, PostgresConnection
from databases.backends.sqlite import CompilationContext, SQLiteBackend, SQLiteConnection
from sqlalchemy import exc
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.sql import ClauseElement, sqltypes
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.util import LRUCache

from db.statements import Bound, plain
from db.statements import bound as bound  # where callers used to import it from

STATEMENT_CACHE_SIZE = 500
# Rows per FETCH of `iterate` (PostgreSQL): asyncpg's own cursor iteration fetches 50.
ITERATE_BATCH = 1000

BindProcessor = Callable[[Any], Any] | None


@dataclass(frozen=True, slots=True)
class CachedStatement:
    """One compiled shape: its SQL text, how to order and convert its values, its columns."""

    compiled: SQLCompiler
    sql: str
    param_names: Sequence[str]  # escaped bind names, in the driver's positional order
    processors: Sequence[BindProcessor]
    result_columns: Any  # `compiled._result_columns`, what `databases` records are built from
    column_maps: Any  # `create_column_maps(result_columns)`, built once instead of per query
    # PostgreSQL records (`_Record`): each column's name, and (index, processor) of those
    # whose type converts results.
    names: Sequence[str] = ()
    converters: Sequence[tuple[int, Callable[[Any], Any]]] = ()

    def bind(self, extracted: Sequence[Any], values: Mapping[str, Any] | None) -> list[Any]:
        """Positional driver arguments for a statement of this shape with its own values."""
        params = self.compiled.construct_params(values or None, extracted_parameters=extracted)
        return [
            value if process is None else process(value)
            for value, process in zip(
                (params[name] for name in self.param_names), self.processors, strict=True
            )
        ]


_UNCACHEABLE = object()  # a shape whose SQL depends on its values (IN lists, literals)
Found = tuple[CachedStatement, Sequence[Any], Mapping[str, Any] | None]
# Per driver position: the value's key, its compiled name, the statement's own value (a
# literal), whether a value must be given, and its bind processor.
_Slot = tuple[str, str, Any, bool, BindProcessor]


@dataclass(frozen=True, slots=True)
class Prepared:
    """A statement built once (`db.statements.bound`): its compiled shape, and where each
    named value goes. Binds what `CachedStatement.bind` would, without `construct_params`.

    `slots` is None for a statement the general path must bind: an uncacheable shape, or
    values computed per execution (callables, values kept aside by `.params()`).
    """

    statement: ClauseElement  # held, so its id names no other statement while this lives
    cached: CachedStatement | None
    slots: Sequence[_Slot] | None

    @classmethod
    def of(cls, statement: ClauseElement, cached: CachedStatement | None) -> Prepared:
        if cached is None:
            return cls(statement, None, None)
        compiled: Any = cached.compiled
        binds = compiled.bind_names
        if getattr(compiled, "_collect_params", False) or any(
            bind.callable is not None for bind in binds
        ):
            return cls(statement, cached, None)
        # This statement's own literal values (its cache key's, memoized on it), not the
        # compiled one's: another statement object of the same shape may have compiled it.
        key: Any = statement._generate_cache_key()
        own = compiled.construct_params(None, extracted_parameters=key.bindparams, _check=False)
        escaped = compiled.escaped_bind_names or {}
        by_name = {escaped.get(name, name): (bind, name) for bind, name in binds.items()}
        slots = []
        for position_name, process in zip(cached.param_names, cached.processors, strict=True):
            bind, name = by_name[position_name]
            slots.append((bind.key, name, own[position_name], bool(bind.required), process))
        return cls(statement, cached, tuple(slots))

    def bind(self, values: Mapping[str, Any]) -> list[Any]:
        """Positional driver arguments: each named value, else the statement's own."""
        assert self.slots is not None
        args = []
        for key, name, own, required, process in self.slots:
            if key in values:
                value = values[key]
            elif name in values:
                value = values[name]
            elif required:
                raise exc.InvalidRequestError(
                    f"A value is required for bind parameter {key!r}", code="cd3x"
                )
            else:
                value = own
            args.append(value if process is None else process(value))
        return args


class StatementCache:
    """An LRU of compiled statement shapes for one dialect."""

    def __init__(
        self, dialect: Dialect, finish: Callable[[SQLCompiler], tuple[str, Sequence[str]]]
    ) -> None:
        self.dialect = dialect
        self._finish = finish  # compiled → (driver SQL text, bind names in positional order)
        self._entries: LRUCache[Any, Any] = LRUCache(STATEMENT_CACHE_SIZE)
        # Statements built once, by id (`Prepared` keeps each alive): a handful per module.
        self._prepared: dict[int, Prepared] = {}

    def bound_args(self, query: Any) -> tuple[CachedStatement, list[Any]] | None:
        """The compiled shape of `query` and its driver arguments; None: compile afresh."""
        if isinstance(query, Bound):
            prepared = self._prepared.get(id(query.statement))
            if prepared is None or prepared.statement is not query.statement:
                prepared = self._prepare(query.statement)
            if prepared.slots is not None:
                assert prepared.cached is not None
                return prepared.cached, prepared.bind(query.values)
        found = self.lookup(query)
        if found is None:
            return None
        statement, extracted, values = found
        return statement, statement.bind(extracted, values)

    def _prepare(self, statement: ClauseElement) -> Prepared:
        found = self.lookup(statement)
        prepared = Prepared.of(statement, found[0] if found is not None else None)
        if len(self._prepared) >= STATEMENT_CACHE_SIZE:  # only if statements were built per
            self._prepared.clear()  # call and passed to `bound`, which defeats its purpose
        self._prepared[id(statement)] = prepared
        return prepared

    def lookup(self, query: Any) -> Found | None:
        """The compiled shape of `query`, its extracted and named values; None: compile afresh."""
        values = None
        if isinstance(query, Bound):
            query, values = query.statement, query.values
        generate = getattr(query, "_generate_cache_key", None)
        key = generate() if generate is not None else None
        if key is None:
            return None
        entry = self._entries.get(key.key)
        if entry is None:
            entry = self._compile(query, key)
            self._entries[key.key] = entry
        if not isinstance(entry, CachedStatement):  # _UNCACHEABLE
            return None
        return entry, key.bindparams, values

    def _compile(self, query: ClauseElement, key: Any) -> CachedStatement | object:
        # SQLCompiler's private attributes below are this module's reason to exist.
        compiled: Any = query.compile(dialect=self.dialect, cache_key=key)
        if compiled.post_compile_params or compiled.literal_execute_params:
            return _UNCACHEABLE
        sql, names = self._finish(compiled)
        processors = compiled._bind_processors
        result_columns = compiled._result_columns or []
        column_maps = create_column_maps(result_columns)
        column_names = [name for name, *_ in result_columns]
        processors_out = [
            (index, datatype._cached_result_processor(self.dialect, None))
            for index, (_, _, _, datatype) in enumerate(result_columns)
        ]
        return CachedStatement(
            compiled=compiled,
            sql=sql,
            param_names=tuple(names),
            processors=tuple(processors.get(name) for name in names),
            result_columns=result_columns,
            column_maps=column_maps,
            names=column_names,
            converters=[
                (index, process)
                for index, process in processors_out
                if process and _may_see_scalars(result_columns[index][3])
            ],
        )


def _postgres_finish(compiled: SQLCompiler) -> tuple[str, Sequence[str]]:
    """Pyformat → `$n`, numbered in sorted name order exactly as `databases` does it."""
    names = sorted(compiled.params)
    mapping = {name: f"${i}" for i, name in enumerate(names, start=1)}
    return compiled.string % mapping, names


def _sqlite_finish(compiled: SQLCompiler) -> tuple[str, Sequence[str]]:
    """qmark placeholders bind in the compiler's positional order."""
    return compiled.string, list(compiled.positiontup or ())


_SCALARS = (int, str, float)
# asyncpg decodes these to date/time objects, never to the scalars `_Record` converts.
_TEMPORAL = (sqltypes.DateTime, sqltypes.Date, sqltypes.Time, sqltypes.Interval)


def _may_see_scalars(datatype: Any) -> bool:
    """Whether `_Record` (asyncpg rows only) must check this column's values for conversion."""
    return not isinstance(getattr(datatype, "impl_instance", datatype), _TEMPORAL)


class _Record(dict[str, Any]):
    """A PostgreSQL row as a dict of column name → value, built and read at C speed.

    Values are those `databases`' Record returns (on PostgreSQL it converts int/str/float
    values through the column type's result processor, e.g. JSON text). Positions, Column
    objects and `_mapping` (the driver's row) go through that Record, as before.
    """

    __slots__ = ("_dialect", "_row", "_statement")

    def __init__(self, row: Any, statement: CachedStatement, dialect: Dialect) -> None:
        if statement.converters:
            values = list(row.values())
            for index, process in statement.converters:
                if isinstance(values[index], _SCALARS):
                    values[index] = process(values[index])
            super().__init__(zip(statement.names, values, strict=True))
        else:
            super().__init__(zip(statement.names, row.values(), strict=True))
        self._row, self._statement, self._dialect = row, statement, dialect

    def _record(self) -> Record:
        statement = self._statement
        return Record(self._row, statement.result_columns, self._dialect, statement.column_maps)

    def __missing__(self, key: Any) -> Any:
        return self._record()[key]

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError as error:
            raise AttributeError(name) from error

    @property
    def _mapping(self) -> Any:
        return self._row

    def values(self) -> Any:  # the driver's values, as `Record.values()`
        return self._row.values()


def _record(row: Any, statement: CachedStatement, dialect: Dialect) -> Record | _Record:
    """A `_Record`, or `databases`' own for rows its columns do not describe (plain text SQL)."""
    if len(statement.names) == len(row):
        return _Record(row, statement, dialect)
    return Record(row, statement.result_columns, dialect, statement.column_maps)


class CachingPostgresConnection(PostgresConnection):
    """asyncpg connection whose statements compile once per shape."""

    def __init__(self, database: CachingPostgresBackend, dialect: Dialect) -> None:
        super().__init__(database, dialect)
        self._statements = database.statements

    def _compile(self, query: Any) -> tuple[str, list[Any], Any]:
        found = self._statements.bound_args(query)
        if found is None:
            return super()._compile(plain(query))
        statement, args = found
        return statement.sql, args, statement.result_columns

    async def fetch_all(self, query: Any) -> list[Any]:  # `Record`s read like the parent's
        found = self._statements.bound_args(query)
        if found is None:
            return await super().fetch_all(plain(query))
        statement, args = found
        assert self._connection is not None, "Connection is not acquired"
        rows = await self._connection.fetch(statement.sql, *args)
        dialect = self._dialect
        if rows and len(rows[0]) == len(statement.names):  # every row of a result alike
            return [_Record(row, statement, dialect) for row in rows]
        return [_record(row, statement, dialect) for row in rows]

    async def fetch_one(self, query: Any) -> Any:  # a `Record` or None, like the parent
        found = self._statements.bound_args(query)
        if found is None:
            return await super().fetch_one(plain(query))
        statement, args = found
        assert self._connection is not None, "Connection is not acquired"
        row = await self._connection.fetchrow(statement.sql, *args)
        return None if row is None else _record(row, statement, self._dialect)

    async def iterate(self, query: Any) -> AsyncGenerator[Any, None]:
        """Rows through a server-side cursor, `ITERATE_BATCH` a round trip (CSV export).

        asyncpg's cursor iteration (the parent's) makes a round trip per 50 rows and builds
        `databases`' slower records. No FETCH runs while a row is out with the caller, so
        a caller that stops early leaves the connection free for its rollback.
        """
        found = self._statements.bound_args(query)
        if found is None:
            async for record in super().iterate(plain(query)):
                yield record
            return
        statement, args = found
        assert self._connection is not None, "Connection is not acquired"
        cursor = await self._connection.cursor(statement.sql, *args)
        dialect = self._dialect
        while True:
            rows = await cursor.fetch(ITERATE_BATCH)
            for row in rows:
                yield _record(row, statement, dialect)
            if len(rows) < ITERATE_BATCH:
                return


class CachingPostgresBackend(PostgresBackend):
    def __init__(self, database_url: Any, **options: Any) -> None:
        super().__init__(database_url, **options)
        self.statements = StatementCache(self._dialect, _postgres_finish)

    def connection(self) -> CachingPostgresConnection:
        return CachingPostgresConnection(self, self._dialect)


class CachingSQLiteConnection(SQLiteConnection):
    """aiosqlite connection whose statements compile once per shape."""

    def __init__(self, pool: Any, dialect: Dialect, statements: StatementCache) -> None:
        super().__init__(pool, dialect)
        self._statements = statements

    def _compile(self, query: Any) -> Any:  # the parent's tuple plus its CompilationContext
        found = self._statements.bound_args(query)
        if found is None:
            return super()._compile(plain(query))
        statement, args = found
        compiled = statement.compiled
        context: Any = self._dialect.execution_ctx_cls()
        context.dialect = self._dialect
        context.result_column_struct = (
            compiled._result_columns,
            compiled._ordered_columns,
            compiled._textual_ordered_columns,
            compiled._ad_hoc_textual,
            compiled._loose_column_name_matching,
        )
        return statement.sql, args, statement.result_columns, CompilationContext(context)


class CachingSQLiteBackend(SQLiteBackend):
    def __init__(self, database_url: Any, **options: Any) -> None:
        super().__init__(database_url, **options)
        self.statements = StatementCache(self._dialect, _sqlite_finish)

    def connection(self) -> CachingSQLiteConnection:
        return CachingSQLiteConnection(self._pool, self._dialect, self.statements)


class CachingDatabase(Database):
    """`databases.Database` on the caching backends (PostgreSQL via asyncpg, SQLite)."""

    SUPPORTED_BACKENDS = {
        **Database.SUPPORTED_BACKENDS,
        "postgresql": f"{__name__}:CachingPostgresBackend",
        "postgres": f"{__name__}:CachingPostgresBackend",
        "sqlite": f"{__name__}:CachingSQLiteBackend",
    }
