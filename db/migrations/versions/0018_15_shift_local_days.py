"""shifts: the first and last day each covers at its facility (#15)

A time-off request's `conflicting_shifts` are the requester's live shifts overlapping its
days at each shift's facility. Each page of requests joined every candidate shift to its
facility's time zone and sent them as text for Python to test (50 lookups a page, the
slowest list of #15). Each shift now keeps `local_first_day` and `local_last_day`, so a
conflict is a comparison of dates. They are computed in Python, by the one rule the
application uses on every shift write (`db.local_days.covered_days`), for every
existing shift here: about 1 s per 100,000 shifts. SQLite rebuilds the table to make the
columns NOT NULL.

Revision ID: 0018_15_shift_local_days
Revises: 0017_15_search_text
Create Date: 2026-12-04 23:00:00
"""

from collections import defaultdict
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import db.types
from db.local_days import covered_days

revision: str = "0018_15_shift_local_days"
down_revision: str | None = "0017_15_search_text"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("local_first_day", "local_last_day")
_shifts = sa.table(
    "shifts",
    sa.column("id", sa.Integer),
    sa.column("facility_id", sa.Integer),
    sa.column("start", db.types.UTCDateTime(timezone=True)),
    sa.column("end", db.types.UTCDateTime(timezone=True)),
    *(sa.column(name, sa.Date) for name in COLUMNS),
)
_facilities = sa.table("facilities", sa.column("id"), sa.column("location_id"))
_locations = sa.table("locations", sa.column("id"), sa.column("timezone", sa.String))


def _backfill() -> None:
    bind = op.get_bind()
    s, f, loc = _shifts, _facilities, _locations
    rows = bind.execute(
        sa.select(s.c.id, s.c.start, s.c.end, loc.c.timezone).select_from(
            s.join(f, f.c.id == s.c.facility_id).join(loc, loc.c.id == f.c.location_id)
        )
    )
    by_days: dict[tuple[object, object], list[int]] = defaultdict(list)
    for shift_id, start, end, zone in rows:
        days = covered_days(start, end, zone)
        by_days[days["local_first_day"], days["local_last_day"]].append(shift_id)
    update = (
        s.update()
        .where(s.c.id.in_(sa.bindparam("ids", expanding=True)))
        .values(local_first_day=sa.bindparam("first"), local_last_day=sa.bindparam("last"))
    )
    for (first, last), ids in by_days.items():
        bind.execute(update, {"ids": ids, "first": first, "last": last})


def upgrade() -> None:
    for name in COLUMNS:
        op.add_column("shifts", sa.Column(name, sa.Date, nullable=True))
    _backfill()
    with op.batch_alter_table("shifts") as batch:
        for name in COLUMNS:
            batch.alter_column(name, existing_type=sa.Date, nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("shifts") as batch:
        for name in COLUMNS:
            batch.drop_column(name)
