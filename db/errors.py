"""Recognise the database's integrity errors and report which constraint failed.

The storage layer knows tables and columns, not API fields or messages: the domain turns
a `ConstraintViolated` into its own error (`domain.errors.from_constraint`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Literal

_SQLITE_UNIQUE = re.compile(r"UNIQUE constraint failed: ([\w.]+(?:, [\w.]+)*)")
_PG_UNIQUE_DETAIL = re.compile(r"Key \(([^)]+)\)=")

ConstraintKind = Literal["unique", "foreign_key", "check", "not_null"]


class ConstraintViolated(Exception):
    """A write broke a constraint: its kind, the columns when the driver names them, and
    for a foreign key whether the row is still referenced (a delete) rather than missing."""

    def __init__(
        self, kind: ConstraintKind, columns: tuple[str, ...] = (), *, referenced: bool = False
    ) -> None:
        super().__init__(f"{kind} constraint violated on {', '.join(columns) or '?'}")
        self.kind: ConstraintKind = kind
        self.columns = columns
        self.referenced = referenced


def _unique_columns(message: str) -> tuple[str, ...]:
    if match := _SQLITE_UNIQUE.search(message):
        return tuple(col.split(".")[-1] for col in match.group(1).split(", "))
    if match := _PG_UNIQUE_DETAIL.search(message):
        return tuple(col.strip().strip('"') for col in match.group(1).split(","))
    return ()


def constraint_violation(exc: BaseException) -> ConstraintViolated | None:
    """What a driver's integrity error says failed, or None if it is not one."""
    if not is_integrity_error(exc):
        return None
    orig = getattr(exc, "orig", exc)
    kind = type(orig).__name__
    message = str(orig)
    detail = getattr(orig, "detail", None) or ""
    if kind == "UniqueViolationError" or "UNIQUE constraint failed" in message:
        return ConstraintViolated("unique", _unique_columns(detail or message))
    if kind == "ForeignKeyViolationError" or "FOREIGN KEY constraint failed" in message:
        # SQLite names no key; domain code checks references on insert, so this is a delete.
        referenced = not detail or "is still referenced" in detail
        return ConstraintViolated("foreign_key", referenced=referenced)
    if kind == "CheckViolationError" or "CHECK constraint failed" in message:
        return ConstraintViolated("check")
    if kind == "NotNullViolationError" or "NOT NULL constraint failed" in message:
        return ConstraintViolated("not_null")
    return None


def is_integrity_error(exc: BaseException) -> bool:
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"IntegrityError", "IntegrityConstraintViolationError"})


# asyncpg's errors for a connection the server ended (pg_terminate_backend, restart, crash),
# or one that was lost on the client side mid-operation.
_CONNECTION_LOST = {
    "PostgresConnectionError",  # SQLSTATE class 08, and ConnectionDoesNotExistError
    "AdminShutdownError",
    "CrashShutdownError",
    "CannotConnectNowError",
}


def is_connection_lost(exc: BaseException) -> bool:
    """True when `exc` (or what caused it) says the database connection is gone, not the query.

    Such a request may succeed when retried on a fresh connection; the API answers 503.
    """
    for current in _causes(exc):
        names = {cls.__name__ for cls in type(current).__mro__}
        if names & _CONNECTION_LOST or isinstance(current, ConnectionError):
            return True
        if "InterfaceError" in names and "closed" in str(current):
            return True  # asyncpg: "connection is closed"
        if "InternalClientError" in names and "another operation" in str(current):
            return True  # asyncpg, when the server's FATAL arrived between two statements
    return False


def is_database_busy(exc: BaseException) -> bool:
    """True when SQLite gave up waiting for another process's write lock (the busy timeout).

    Nothing was written; the same request may succeed a moment later: the API answers 503.
    """
    return any(
        type(current).__name__ == "OperationalError" and "database is locked" in str(current)
        for current in _causes(exc)
    )


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, then what caused it (or was being handled), and so on; each once."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__
