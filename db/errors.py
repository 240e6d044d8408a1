"""Turn database integrity errors into domain errors (never a 500)."""

from __future__ import annotations

import re

from domain.errors import Conflict, DomainError, ValidationFailed

_SQLITE_UNIQUE = re.compile(r"UNIQUE constraint failed: ([\w.]+(?:, [\w.]+)*)")
_PG_UNIQUE_DETAIL = re.compile(r"Key \(([^)]+)\)=")


def _unique_fields(message: str) -> list[str]:
    if match := _SQLITE_UNIQUE.search(message):
        return [col.split(".")[-1] for col in match.group(1).split(", ")]
    if match := _PG_UNIQUE_DETAIL.search(message):
        return [col.strip().strip('"') for col in match.group(1).split(",")]
    return []


def _api_field(column: str) -> str:
    return column.removesuffix("_id")


def translate_integrity_error(exc: BaseException) -> DomainError | None:
    """Map a driver's integrity error to a domain error, or None if it is not one."""
    orig = getattr(exc, "orig", exc)
    kind = type(orig).__name__
    message = str(orig)
    detail = getattr(orig, "detail", None) or ""
    if kind == "UniqueViolationError" or "UNIQUE constraint failed" in message:
        fields = _unique_fields(detail or message) or ["non_field_errors"]
        if len(fields) == 1:
            name = _api_field(fields[0])
            return ValidationFailed.on(name, f"An object with this {name} already exists.")
        names = ", ".join(_api_field(f) for f in fields)
        return ValidationFailed.on(
            "non_field_errors",
            f"The fields {names} must make a unique set.",
        )
    if kind == "ForeignKeyViolationError" or "FOREIGN KEY constraint failed" in message:
        # SQLite names no key; domain code checks references on insert, so this is a delete.
        if not detail or "is still referenced" in detail:
            return Conflict("This object is still referenced by other data and cannot be deleted.")
        return ValidationFailed.on("non_field_errors", "A referenced object does not exist.")
    if kind == "CheckViolationError" or "CHECK constraint failed" in message:
        return ValidationFailed.on("non_field_errors", "The values break a data rule.")
    if kind == "NotNullViolationError" or "NOT NULL constraint failed" in message:
        return ValidationFailed.on("non_field_errors", "A required value is missing.")
    return None


def is_integrity_error(exc: BaseException) -> bool:
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"IntegrityError", "IntegrityConstraintViolationError"})
