"""Who is acting: the authenticated user as the rules see it, and the role ladder."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from domain.errors import PermissionDenied


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    MANAGER = "manager"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def at_least(self, other: Role) -> bool:
        return self.rank >= other.rank


OWN_REVIEW = "You cannot review your own request."
_RANKS = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.MANAGER: 2, Role.ADMIN: 3}


@dataclass(frozen=True, slots=True)
class Actor:
    """An authenticated, active user; `via` tells session, bearer token and API key apart."""

    id: int
    username: str
    role: Role
    via: str = "session"  # session | token | api_key | system
    credential_id: str | None = None  # session key hash, token jti or API key hash
    read_only: bool = False  # a `read` API key: unsafe methods are refused
    location_id: int | None = None  # an API key restricted to one site (domain/sites.py)
    site_facilities: frozenset[int] | None = None  # that site's facilities when authenticated
    expires_at: datetime | None = None  # when the credential ends (a socket closes then)

    @property
    def is_manager(self) -> bool:
        return self.role.at_least(Role.MANAGER)

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    def require(self, role: Role) -> None:
        """Raise PermissionDenied unless this actor has at least `role`."""
        if not self.role.at_least(role):
            raise PermissionDenied()

    def require_reviewer_of(self, owner_id: int | None) -> None:
        """Four-eyes (contract 5): a manager or admin reviews others' requests, never their own."""
        if not self.is_manager:
            raise PermissionDenied()
        if owner_id == self.id:
            raise PermissionDenied(OWN_REVIEW)

    def can_see_private_of(self, owner_id: int | None) -> bool:
        """Private rows (time off, time entries) are visible to their owner and to managers."""
        return self.is_manager or owner_id == self.id
