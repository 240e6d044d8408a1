"""tickets: plans that stay right with the ordering indexes (#15)

Two plans 0009 made worse, seen on the benchmark:

- `(created_at)` is back instead of `(created_at, id)`: with the wider index PostgreSQL
  priced a filtered default-order list (`?search=` matching 1%) as cheaper to scan whole
  and sort (27 ms at 10,000 tickets) than to read backwards until a page is full (12 ms).
  The default order still needs no sort of the table: equal `created_at` runs are tiny.
- PostgreSQL: multivariate statistics on (status, priority). A ticket's priority and its
  status go together (the urgent ones are handled first); assumed independent, a filter
  on both (`?status=open,acknowledged&priority=high,critical&ordering=-priority`) looked
  common, so the planner read the priority index in order hoping to fill a page soon, and
  read the whole table when the combination was rare. With the statistics it knows.

Revision ID: 0010_15_ordering_plans
Revises: 0009_15_ordering_indexes
Create Date: 2026-12-03 15:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010_15_ordering_plans"
down_revision: str | None = "0009_15_ordering_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("incident_tickets", "service_tickets")


def upgrade() -> None:
    for table in TABLES:
        op.create_index(op.f(f"ix_{table}_created_at"), table, ["created_at"])
        op.drop_index(op.f(f"ix_{table}_created_at_id"), table_name=table)
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"CREATE STATISTICS {table}_status_priority (mcv) ON status, priority FROM {table}")
        op.execute(f"ANALYZE {', '.join(TABLES)}")  # the statistics are empty until then


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"DROP STATISTICS IF EXISTS {table}_status_priority")
    for table in TABLES:
        op.create_index(op.f(f"ix_{table}_created_at_id"), table, ["created_at", "id"])
        op.drop_index(op.f(f"ix_{table}_created_at"), table_name=table)
