"""The restore marker: an event above every id a live client may hold.

Clients resume `/ws/` with the last id they saw. After a restore the rows are those of the
archive, so such an id means nothing any more: the marker jumps the id sequence far above it,
and the hub answers `resync_required` to any `since` below the newest marker.
"""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from db.tables import events

RESTORE_TOPIC = "_restore"
# Far above any id a client of the replaced database could have seen since its last backup.
ID_JUMP = 1_000_000_000


def insert_marker(conn: Connection, *, above: int, archive_created_at: str) -> int:
    """Insert the marker with id `above + ID_JUMP` and move the id sequence past it."""
    marker_id = above + ID_JUMP
    now = datetime.now(UTC)
    data = {"id": 0, "restored_at": now.isoformat(), "archive_created_at": archive_created_at}
    conn.execute(
        events.insert().values(
            id=marker_id,
            topic=RESTORE_TOPIC,
            action="restored",
            object_id=0,
            data=orjson.dumps(data).decode(),
            owner_id=None,
            private=False,
            published=True,  # nobody subscribes to it; the hub looks it up by topic
            created_at=now,
        )
    )
    if conn.dialect.name == "postgresql":
        conn.execute(
            sa.text("SELECT setval(pg_get_serial_sequence('events', 'id'), :value)"),
            {"value": marker_id},
        )
    # SQLite: AUTOINCREMENT keeps the highest id ever inserted in sqlite_sequence by itself.
    return marker_id
