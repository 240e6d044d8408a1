"""job_runs.last_success_at: when each recurring job last finished without error (#14)

Revision ID: 0005_14_job_last_success
Revises: 0004_12_api_keys
Create Date: 2026-12-03 08:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import db.types

revision: str = "0005_14_job_last_success"
down_revision: str | None = "0004_12_api_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "job_runs",
        sa.Column("last_success_at", db.types.UTCDateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    with op.batch_alter_table("job_runs") as batch:
        batch.drop_column("last_success_at")
