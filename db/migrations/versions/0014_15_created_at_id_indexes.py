"""tickets' created_at indexes end in id: the default order sort-free, deep pages index-only (#15)

A ticket list's default order is (-created_at, -id). On `(created_at)` alone PostgreSQL
sorts each run of equal timestamps by id (an incremental sort), and a page far down the
list (`?page=40`) reads every row before it from the table. With `id` in the index the
order is read off it, and a deep page picks its ids from the index alone before reading
its 50 rows (api/listing.py, `DEEP_PAGE_OFFSET`). Incident tickets already had
`(status, created_at, id)`; service tickets' `(status, created_at)` gets `id` too.

Revision ID: 0014_15_created_at_id_indexes
Revises: 0013_15_foreign_key_indexes
Create Date: 2026-12-04 18:45:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014_15_created_at_id_indexes"
down_revision: str | None = "0013_15_foreign_key_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, old columns, new columns)
REPLACED = (
    ("incident_tickets", ["created_at"], ["created_at", "id"]),
    ("service_tickets", ["created_at"], ["created_at", "id"]),
    ("service_tickets", ["status", "created_at"], ["status", "created_at", "id"]),
)


def _name(table: str, columns: list[str]) -> str:
    return f"ix_{table}_{'_'.join(columns)}"


def upgrade() -> None:
    for table, old, new in REPLACED:
        op.create_index(_name(table, new), table, new)
        op.drop_index(_name(table, old), table_name=table)


def downgrade() -> None:
    for table, old, new in REPLACED:
        op.create_index(_name(table, old), table, old)
        op.drop_index(_name(table, new), table_name=table)
