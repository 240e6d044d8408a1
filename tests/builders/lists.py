"""A resource's first list page as a statement, for tests that read its query plan."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from starlette.datastructures import QueryParams

from api.crud import Resource
from api.listing import page_select


def first_page(
    resource: Resource,
    query_string: str,
    *,
    size: int = 50,
    query: Any = None,
    ids_first: bool = False,
) -> sa.Select[Any]:
    """What `GET <resource>?<query_string>` reads for page 1 (a manager's list, or `query`);
    `ids_first`: read as a deep page is (`api.listing.DEEP_PAGE_OFFSET`)."""
    params = QueryParams(query_string)
    spec = resource.spec
    base = resource.list_query(None) if query is None else query
    return page_select(
        base,
        spec.where(params),
        spec.order_keys(params),
        limit=size,
        offset=0,
        id_column=spec.id_column,
        ids_first=ids_first,
    )
