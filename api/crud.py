"""Standard collection/detail endpoints built from a resource's domain functions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.body import read_json
from api.context import get_store, if_match, path_id, require_actor
from api.csv_export import csv_response, wants_csv
from api.listing import ListSpec, paginate
from api.openapi.meta import ResourceDoc
from api.responses import JSONResponse, detail_response, no_content
from domain.actors import Actor
from domain.errors import NotFound
from domain.resource import (
    Creator,
    Deleter,
    Getter,
    ListQuery,
    ResourceRules,
    Serializer,
    Updater,
)
from domain.sites import site_allows, site_condition

AfterDelete = Callable[[Request, dict[str, Any]], Awaitable[None]]
# Before the update's transaction: slow checks (a password) whose answers it takes as kwargs.
PrepareUpdate = Callable[[Request, Actor, int, Mapping[str, Any]], Awaitable[dict[str, Any]]]
# Before a create's transaction: checks too slow to run under it (a recurrence rule).
PrepareCreate = Callable[[Actor, Mapping[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class SiteScope:
    """Where a resource's rows sit, for API keys restricted to one site (domain/sites.py)."""

    column: sa.ColumnElement[Any]  # the list query's facility_id or location_id column
    field: str  # the representation's field: "facility" or "location"


@dataclass(frozen=True)
class Resource:
    """A REST collection: its path, list options and docs around the domain's `RULES`."""

    path: str
    spec: ListSpec
    rules: ResourceRules
    # After the delete committed, with what `delete` returned: files and the like.
    after_delete: AfterDelete | None = None
    prepare_update: PrepareUpdate | None = None
    prepare_create: PrepareCreate | None = None
    extra_routes: Sequence[Route] = ()
    csv: bool = False  # `?format=csv` streams the whole filtered list (api.csv_export)
    doc: ResourceDoc | None = None  # schemas for /api/schema/ (api.openapi)
    site: SiteScope | None = None  # site-bound rows: narrowed for site-restricted keys

    @property
    def serialize(self) -> Serializer:
        return self.rules.serialize

    @property
    def list_query(self) -> ListQuery:
        return self.rules.list_query

    @property
    def get(self) -> Getter:
        return self.rules.get

    @property
    def create(self) -> Creator | None:
        return self.rules.create

    @property
    def update(self) -> Updater | None:
        return self.rules.update

    @property
    def delete(self) -> Deleter | None:
        return self.rules.delete


def _list_query(resource: Resource, actor: Actor) -> sa.Select[Any]:
    query = resource.list_query(actor)
    if resource.site is not None and actor.location_id is not None:
        site = resource.site
        query = query.where(
            site_condition(site.column, field=site.field, location_id=actor.location_id)
        )
    return query


def _visible(resource: Resource, actor: Actor, found: dict[str, Any]) -> bool:
    if resource.site is None or actor.location_id is None:
        return True
    return site_allows(actor, resource.path.strip("/"), found)


def _method_not_allowed(request: Request) -> Response:
    raise HTTPException(405)  # answered by api/errors.py


def collection_endpoint(resource: Resource) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        actor = require_actor(request)
        store = get_store(request)
        if request.method == "GET":
            if resource.csv and wants_csv(request):
                return csv_response(
                    store,
                    _list_query(resource, actor),
                    spec=resource.spec,
                    params=request.query_params,
                    serialize=resource.serialize,
                    filename=resource.path.strip("/").replace("/", "-") + ".csv",
                )
            index = resource.spec.search_index
            async with store.read_connection() as conn:
                page = await paginate(
                    conn,
                    _list_query(resource, actor),
                    spec=resource.spec,
                    params=request.query_params,
                    url=request.url,
                    serialize=resource.serialize,
                    counts_scope=store,
                    search_index=index is not None and await store.has_index(index),
                )
            return JSONResponse(page)
        if resource.create is None:
            return _method_not_allowed(request)
        data = await read_json(request)
        if resource.prepare_create is not None:
            await resource.prepare_create(actor, data)
        async with store.unit_of_work(actor_id=actor.id) as uow:
            created = await resource.create(uow, actor, data)
        return detail_response(created, 201)

    return endpoint


def detail_endpoint(resource: Resource) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        actor = require_actor(request)
        store = get_store(request)
        object_id = path_id(request)
        if request.method == "GET":
            async with store.read_connection() as conn:
                found = await resource.get(conn, actor, object_id)
            if found is None or not _visible(resource, actor, found):
                raise NotFound()
            return detail_response(found)
        if request.method == "DELETE":
            if resource.delete is None:
                return _method_not_allowed(request)
            async with store.unit_of_work(actor_id=actor.id) as uow:
                deleted = await resource.delete(uow, actor, object_id, if_match=if_match(request))
            if resource.after_delete is not None and deleted is not None:
                await resource.after_delete(request, deleted)
            return no_content()
        if resource.update is None:
            return _method_not_allowed(request)
        data = await read_json(request)
        prepared = (
            await resource.prepare_update(request, actor, object_id, data)
            if resource.prepare_update is not None
            else {}
        )
        async with store.unit_of_work(actor_id=actor.id) as uow:
            updated = await resource.update(
                uow,
                actor,
                object_id,
                data,
                partial=request.method == "PATCH",
                if_match=if_match(request),
                **prepared,
            )
        return detail_response(updated)

    return endpoint


class ResourceRoute(Route):
    """A route built from a Resource, so the OpenAPI generator can document it from one."""

    def __init__(self, path: str, resource: Resource, *, detail: bool) -> None:
        endpoint = detail_endpoint(resource) if detail else collection_endpoint(resource)
        methods = ["GET", "PUT", "PATCH", "DELETE"] if detail else ["GET", "POST"]
        super().__init__(path, endpoint, methods=methods)
        self.resource = resource
        self.detail = detail


def resource_routes(resource: Resource) -> list[Route]:
    """`<path>/` (GET, POST) and `<path>/<id>/` (GET, PUT, PATCH, DELETE)."""
    return [
        *resource.extra_routes,
        ResourceRoute(f"{resource.path}/", resource, detail=False),
        ResourceRoute(f"{resource.path}/{{id:int}}/", resource, detail=True),
    ]
