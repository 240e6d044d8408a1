"""tickets ordered by status read an index, one per direction (#15)

`?ordering=status` is `status, -id`; a status's run is thousands of rows (80% of the
tickets are closed), and the `(status, created_at, id)` index left each run to be sorted
by id: 4-6 ms of PostgreSQL per page on 100,000 tickets. As for the priority rank (0009),
`(status, id)` read backwards gives `-status`, `(status, id DESC)` gives `status`.

Revision ID: 0015_15_status_ordering_indexes
Revises: 0014_15_created_at_id_indexes
Create Date: 2026-12-04 19:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_15_status_ordering_indexes"
down_revision: str | None = "0014_15_created_at_id_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("incident_tickets", "service_tickets")


def upgrade() -> None:
    for table in TABLES:
        op.create_index(f"ix_{table}_status_id", table, ["status", "id"])
        op.create_index(f"ix_{table}_status_id_desc", table, ["status", sa.text("id DESC")])


def downgrade() -> None:
    for table in TABLES:
        op.drop_index(f"ix_{table}_status_id_desc", table_name=table)
        op.drop_index(f"ix_{table}_status_id", table_name=table)
