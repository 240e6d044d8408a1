"""tickets: an index for every list ordering that sorted the whole table (#15)

`?ordering=title|occurred_at|updated_at|completed_at|priority` (either direction) sorted every
ticket for each 50-row page: 5-8 ms of PostgreSQL CPU at 10,000 tickets, 30-55 ms at
100,000. Ties break on `-id` (the contract), so:

- a near-unique column gets `(col, id)`: `-col` reads it backwards in exactly the list's
  order (`col DESC, id DESC`); `col` reads it forwards and only reorders each run of equal
  values by `-id` (PostgreSQL's incremental sort, SQLite's "right part" sort), a few rows;
- `(created_at, id)` replaces `(created_at)`, so the default order is exact too;
- the priority rank has four values, so a run is a quarter of the table: two indexes,
  `(rank, id)` for `-priority` and `(rank, id DESC)` for `priority`, each exact.

Revision ID: 0009_15_ordering_indexes
Revises: 0008_11_email_retry
Create Date: 2026-12-03 14:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009_15_ordering_indexes"
down_revision: str | None = "0008_11_email_retry"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copy of db.priorities.priority_rank (as in 0002): PostgreSQL uses an expression
# index only for a query with the same expression.
RANK = (
    "CASE WHEN (priority = 'low') THEN 0 WHEN (priority = 'medium') THEN 1 "
    "WHEN (priority = 'high') THEN 2 WHEN (priority = 'critical') THEN 3 ELSE -1 END"
)
PLAIN = {
    "incident_tickets": ("title", "occurred_at", "created_at", "updated_at"),
    "service_tickets": ("title", "completed_at", "created_at", "updated_at"),
}


def upgrade() -> None:
    for table, columns in PLAIN.items():
        for column in columns:
            op.create_index(op.f(f"ix_{table}_{column}_id"), table, [column, "id"])
        # `(created_at, id)` replaces `(created_at)`: the default order (-created_at) exact.
        op.drop_index(op.f(f"ix_{table}_created_at"), table_name=table)
        op.execute(f"CREATE INDEX ix_{table}_priority_rank_id ON {table} (({RANK}), id)")
        op.execute(
            f"CREATE INDEX ix_{table}_priority_rank_id_desc ON {table} (({RANK}), id DESC)"
        )


def downgrade() -> None:
    for table, columns in PLAIN.items():
        op.drop_index(f"ix_{table}_priority_rank_id_desc", table_name=table)
        op.drop_index(f"ix_{table}_priority_rank_id", table_name=table)
        op.create_index(op.f(f"ix_{table}_created_at"), table, ["created_at"])
        for column in columns:
            op.drop_index(op.f(f"ix_{table}_{column}_id"), table_name=table)
