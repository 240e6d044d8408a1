"""Domain errors, raised by the rules and mapped to HTTP in exactly one place (api.errors)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from db.errors import ConstraintViolated


class DomainError(Exception):
    """Base of every error a client may see; `detail` is safe to show."""

    detail = "Error."

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail or self.detail)
        if detail:
            self.detail = detail


class NotAuthenticated(DomainError):
    detail = "Authentication credentials were not provided."


class AuthenticationFailed(DomainError):
    detail = "Incorrect authentication credentials."


class PermissionDenied(DomainError):
    detail = "You do not have permission to perform this action."


class NotFound(DomainError):
    detail = "Not found."


class Conflict(DomainError):
    detail = "The request conflicts with other data."


class PreconditionFailed(DomainError):
    detail = "The resource has changed since it was read (If-Match does not match)."


class Throttled(DomainError):
    detail = "Request was throttled."

    def __init__(self, retry_after_secs: int, detail: str | None = None) -> None:
        super().__init__(detail or f"Too many attempts. Try again in {retry_after_secs} seconds.")
        self.retry_after_secs = retry_after_secs


class ValidationFailed(DomainError):
    """400 with DRF's field → messages mapping."""

    detail = "Invalid input."

    def __init__(self, errors: Mapping[str, Sequence[str] | str]) -> None:
        self.errors: dict[str, list[str]] = {
            field: [messages] if isinstance(messages, str) else list(messages)
            for field, messages in errors.items()
        }
        super().__init__(str(self.errors))

    @classmethod
    def on(cls, field: str, message: str) -> ValidationFailed:
        return cls({field: [message]})


class BadRequest(DomainError):
    """400 with a plain `detail` (e.g. bad credentials)."""

    detail = "Bad request."


def _field(column: str) -> str:
    """The API field of a column: `facility_id` is `facility`."""
    return column.removesuffix("_id")


def from_constraint(violation: ConstraintViolated) -> DomainError:
    """The client's view of a broken database constraint (400, or 409 for a delete of a
    row still referenced), so a race past the domain's own checks is never a 500."""
    if violation.kind == "unique":
        fields = [_field(column) for column in violation.columns] or ["non_field_errors"]
        if len(fields) == 1:
            return ValidationFailed.on(
                fields[0], f"An object with this {fields[0]} already exists."
            )
        return ValidationFailed.on(
            "non_field_errors", f"The fields {', '.join(fields)} must make a unique set."
        )
    if violation.kind == "foreign_key":
        if violation.referenced:
            return Conflict("This object is still referenced by other data and cannot be deleted.")
        return ValidationFailed.on("non_field_errors", "A referenced object does not exist.")
    if violation.kind == "check":
        return ValidationFailed.on("non_field_errors", "The values break a data rule.")
    return ValidationFailed.on("non_field_errors", "A required value is missing.")


@contextmanager
def constraints_as_domain_errors() -> Iterator[None]:
    """For callers outside the API (CLI commands): a broken constraint as a domain error."""
    try:
        yield
    except ConstraintViolated as violated:
        raise from_constraint(violated) from violated
