"""Row counts per table and the schema revision, read the same way on both backends."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

VERSION_TABLE = "alembic_version"


def table_names(conn: Connection) -> list[str]:
    """BMS's tables present in the database (the version table excluded), sorted."""
    names = sa.inspect(conn).get_table_names()
    return sorted(n for n in names if n != VERSION_TABLE and not n.startswith("sqlite_"))


def row_counts(conn: Connection) -> dict[str, int]:
    counts = {}
    for name in table_names(conn):
        query = sa.select(sa.func.count()).select_from(sa.table(name))
        counts[name] = int(conn.execute(query).scalar_one())
    return counts


def revision(conn: Connection) -> str | None:
    if VERSION_TABLE not in sa.inspect(conn).get_table_names():
        return None
    value = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    return None if value is None else str(value)


def newest_event_id(conn: Connection) -> int:
    """The highest event id the database holds, 0 without events (or without the table)."""
    if "events" not in sa.inspect(conn).get_table_names():
        return 0
    return int(conn.execute(sa.text("SELECT coalesce(max(id), 0) FROM events")).scalar_one())
