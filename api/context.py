"""Per-request accessors: the store, the acting user, path ids, preconditions."""

from __future__ import annotations

from starlette.requests import Request

from db.store import Store
from domain.actors import Actor
from domain.errors import NotAuthenticated, NotFound
from domain.limits import parse_id


def get_store(request: Request) -> Store:
    return request.app.state.store


def optional_actor(request: Request) -> Actor | None:
    """The user the auth middleware resolved (session cookie or bearer token), if any."""
    return getattr(request.state, "actor", None)


def require_actor(request: Request) -> Actor:
    actor = optional_actor(request)
    if actor is None:
        raise NotAuthenticated(getattr(request.state, "auth_error", None))
    return actor


def path_id(request: Request, name: str = "id") -> int:
    """An integer path parameter; anything else is 404 like an unknown row."""
    found = parse_id(str(request.path_params.get(name)))
    if found is None:  # out of the storage's range too: no row can have it
        raise NotFound()
    return found


def if_match(request: Request) -> str | None:
    return request.headers.get("if-match")
