"""an index on every foreign key that had none (#15)

Deleting a referenced row makes the database look for the rows that refer to it (to
restrict, cascade or set null). Without an index that is a scan of the whole referencing
table per deleted row: each incident or service ticket's DELETE read every time entry,
and a profile's would read every history entry ever written. Django gives every
ForeignKey an index for this reason; `tests/db/test_foreign_key_indexes.py` now checks
that each foreign key in `db/tables.py` leads one.

Plain `CREATE INDEX` (not CONCURRENTLY): `bms restore` migrates inside the restore's own
transaction. On a large `history` table the index build holds writes back for as long as
it takes (seconds for a few million rows); run the upgrade in a quiet minute.

Revision ID: 0013_15_foreign_key_indexes
Revises: 0012_15_service_search_trigram
Create Date: 2026-12-04 18:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013_15_foreign_key_indexes"
down_revision: str | None = "0012_15_service_search_trigram"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FOREIGN_KEYS = (
    ("api_keys", "location_id"),
    ("calendar_feeds", "facility_id"),
    ("emails", "requested_by"),
    ("history", "actor_id"),
    ("scheduled_events", "created_by"),
    ("series", "created_by"),
    ("ticket_comments", "author_id"),
    ("time_entries", "incident_ticket_id"),
    ("time_entries", "reviewed_by"),
    ("time_entries", "service_ticket_id"),
    ("time_off_requests", "reviewed_by"),
)


def upgrade() -> None:
    for table, column in FOREIGN_KEYS:
        op.create_index(f"ix_{table}_{column}", table, [column])


def downgrade() -> None:
    for table, column in FOREIGN_KEYS:
        op.drop_index(f"ix_{table}_{column}", table_name=table)
