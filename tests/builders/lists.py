"""A resource's first list page as a statement, for tests that read its query plan."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from starlette.datastructures import QueryParams

from api.crud import Resource


def first_page(resource: Resource, query_string: str, *, size: int = 50) -> sa.Select[Any]:
    """What `GET <resource>?<query_string>` reads for page 1 (a manager's list)."""
    params = QueryParams(query_string)
    spec = resource.spec
    return (
        resource.list_query(None)
        .where(*spec.where(params))
        .order_by(*spec.order_by(params))
        .limit(size)
        .offset(0)
    )
