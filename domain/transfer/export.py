"""Stream every resource out as JSON Lines, one page of rows in memory at a time."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from db.store import Store
from db.tables import profiles, users
from db.types import dumps
from domain.profile_images import stored_image_path
from domain.transfer.kinds import CREDENTIALS_TYPE, IMAGE_TYPE, KINDS, Kind

PAGE_ROWS = 500


def line(kind: str, data: Any) -> bytes:
    return dumps({"type": kind, "data": data}) + b"\n"


async def count_rows(store: Store) -> int:
    """How many lines an export will write (for a progress bar)."""
    total = 0
    async with store.connection() as conn:
        for kind in KINDS:
            query = sa.select(sa.func.count()).select_from(kind.query().subquery())
            total += int(await conn.fetch_val(query))
    return total


async def _rows(conn: Any, kind: Kind) -> AsyncIterator[Any]:
    """Rows of `kind` in id order, by keyset pages (memory flat in the row count)."""
    base = kind.query()
    id_column = base.selected_columns["id"]
    after = 0
    while True:
        page = await conn.fetch_all(
            base.where(id_column > after).order_by(id_column).limit(PAGE_ROWS)
        )
        for row in page:
            yield row
        if len(page) < PAGE_ROWS:
            return
        after = page[-1]["id"]


async def export_lines(
    store: Store, *, media_root: Path, credentials: bool = True
) -> AsyncIterator[bytes]:
    """Every resource as lines; then password hashes and profile images, unless told not to."""
    async with AsyncExitStack() as stack:
        conn = await stack.enter_async_context(store.connection())
        if store.is_postgres:  # one snapshot for the whole file
            await stack.enter_async_context(
                conn.transaction(isolation="repeatable_read", readonly=True)
            )
        for kind in KINDS:
            async for row in _rows(conn, kind):
                yield line(kind.name, kind.serialize(row))
        if credentials:
            rows = await conn.fetch_all(sa.select(users.c.username, users.c.password_hash))
            for row in rows:
                yield line(CREDENTIALS_TYPE, dict(row._mapping))
        query = sa.select(profiles.c.id, profiles.c.profile_image).where(
            profiles.c.profile_image.is_not(None)
        )
        for row in await conn.fetch_all(query):
            name = str(row["profile_image"]).rpartition("/")[2]
            path = stored_image_path(media_root, name)
            if path is not None:
                content = base64.b64encode(path.read_bytes()).decode()
                yield line(
                    IMAGE_TYPE, {"profile": row["id"], "name": name, "content_base64": content}
                )
