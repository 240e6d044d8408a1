"""tickets: a facility's tickets of one status read in list order from one index (#15)

`?facility=3&status=open` (a control room's wall display, a supervisor's dashboard) read
the status index in list order and dropped the other facilities' rows one by one, or the
facility's rows and sorted them; with the search term of a dashboard, the generic plan
read the trigram index for a term every ticket contains: 17-61 ms of PostgreSQL on
100,000 tickets for a facility with none of that status, against 0.06 ms with
`(facility_id, status, created_at, id)`. It leads with `facility_id`, so it also serves the
foreign key and replaces `(facility_id)`.

Revision ID: 0016_15_facility_status_indexes
Revises: 0015_15_status_ordering_indexes
Create Date: 2026-12-04 19:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016_15_facility_status_indexes"
down_revision: str | None = "0015_15_status_ordering_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("incident_tickets", "service_tickets")
COLUMNS = ["facility_id", "status", "created_at", "id"]


def upgrade() -> None:
    for table in TABLES:
        op.create_index(f"ix_{table}_{'_'.join(COLUMNS)}", table, COLUMNS)
        op.drop_index(f"ix_{table}_facility_id", table_name=table)


def downgrade() -> None:
    for table in TABLES:
        op.create_index(f"ix_{table}_facility_id", table, ["facility_id"])
        op.drop_index(f"ix_{table}_{'_'.join(COLUMNS)}", table_name=table)
