"""service tickets: the trigram index for `?search=` that incident tickets got in 0011 (#15)

Service tickets are searched the same way (`number`, `title`, `description` ILIKE
'%term%') and a rare term read the whole table the same way. pg_trgm was created by 0011
where it could be; where it could not, this leaves the index out too, and warns.

Revision ID: 0012_15_service_search_trigram
Revises: 0011_15_search_trigram
Create Date: 2026-12-03 18:10:00
"""

import warnings
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_15_service_search_trigram"
down_revision: str | None = "0011_15_search_trigram"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_service_tickets_search_trgm"


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    if bind.execute(sa.text("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")).first():
        op.execute(
            f"CREATE INDEX {INDEX} ON service_tickets USING gin "
            "(number gin_trgm_ops, title gin_trgm_ops, description gin_trgm_ops)"
        )
        return
    warnings.warn(
        f"pg_trgm is not in this database: {INDEX} is not created and service tickets' "
        "search= reads the table; see 0011_15_search_trigram",
        stacklevel=1,
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP INDEX IF EXISTS {INDEX}")
