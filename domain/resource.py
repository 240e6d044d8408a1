"""The one interface each resource's rules offer, so the API layer only declares a resource.

Every resource module in domain/ ends with `RULES = ResourceRules(...)`: its serializer,
list query, getter and (if writable) creator, updater and deleter, with the signatures
below. The leading arguments are positional-only, so a module may name its id after the
resource (`location_id`) while the type checker still checks every call the API makes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa
from databases.core import Connection

from db.uow import UnitOfWork
from domain.actors import Actor

Data = Mapping[str, Any]
Serialized = dict[str, Any]
Serializer = Callable[[Mapping[str, Any]], Serialized]


class ListQuery(Protocol):
    """The rows `actor` may list, before the query string's filters, search and ordering."""

    def __call__(self, actor: Actor, /) -> sa.Select[Any]: ...


class Getter(Protocol):
    """One object as `actor` may see it; None when it is missing or hidden from them."""

    async def __call__(
        self, conn: Connection, actor: Actor, object_id: int, /
    ) -> Serialized | None: ...


class Creator(Protocol):
    async def __call__(self, uow: UnitOfWork, actor: Actor, data: Data, /) -> Serialized: ...


class Updater(Protocol):
    """PUT (`partial=False`) or PATCH; `if_match` is the client's ETag, if it sent one."""

    async def __call__(
        self,
        uow: UnitOfWork,
        actor: Actor,
        object_id: int,
        data: Data,
        /,
        *,
        partial: bool,
        if_match: str | None = None,
    ) -> Serialized: ...


class Deleter(Protocol):
    """Delete; return what was deleted when the API must clean up after it (files)."""

    async def __call__(
        self, uow: UnitOfWork, actor: Actor, object_id: int, /, *, if_match: str | None = None
    ) -> Serialized | None: ...


@dataclass(frozen=True)
class ResourceRules:
    """What a REST collection is made of; no create/update/delete: that method is refused."""

    serialize: Serializer
    list_query: ListQuery
    get: Getter
    create: Creator | None = None
    update: Updater | None = None
    delete: Deleter | None = None
