"""incident tickets: indexes serving the list's status filter in priority and default order

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 07:20:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "incident_tickets"
PRIORITY_INDEX = "ix_incident_tickets_status_priority_rank_id"
# Frozen copy of db.priorities.priority_rank: PostgreSQL uses an expression index only for
# a query with the same expression, so the two must stay the same.
RANK = (
    "CASE WHEN (priority = 'low') THEN 0 WHEN (priority = 'medium') THEN 1 "
    "WHEN (priority = 'high') THEN 2 WHEN (priority = 'critical') THEN 3 ELSE -1 END"
)


def upgrade() -> None:
    # ?status=...&ordering=-priority: the first page comes off the index, no sort of all rows.
    op.execute(f"CREATE INDEX {PRIORITY_INDEX} ON {TABLE} (status, ({RANK}) DESC, id DESC)")
    # ?status=... in the default order (-created_at, -id): `id` makes it sort-free too.
    op.create_index(
        op.f("ix_incident_tickets_status_created_at_id"), TABLE, ["status", "created_at", "id"]
    )
    op.drop_index(op.f("ix_incident_tickets_status_created_at"), table_name=TABLE)


def downgrade() -> None:
    op.create_index(op.f("ix_incident_tickets_status_created_at"), TABLE, ["status", "created_at"])
    op.drop_index(op.f("ix_incident_tickets_status_created_at_id"), table_name=TABLE)
    op.drop_index(PRIORITY_INDEX, table_name=TABLE)
