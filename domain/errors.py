"""Domain errors, raised by the rules and mapped to HTTP in exactly one place (api.errors)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


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
