"""Foreign keys in input: check referenced rows exist, so clients get DRF's 400, not a 500."""

from __future__ import annotations

import sqlalchemy as sa
from databases.core import Connection

from domain.errors import ValidationFailed


def invalid_pk(value: object) -> str:
    return f'Invalid pk "{value}" - object does not exist.'


async def require_row(conn: Connection, *, field: str, table: sa.Table, value: int | None) -> None:
    """Raise 400 on `field` unless `value` is None or the id of a row of `table`."""
    if value is None:
        return
    found = await conn.fetch_val(sa.select(table.c.id).where(table.c.id == value))
    if found is None:
        raise ValidationFailed.on(field, invalid_pk(value))
