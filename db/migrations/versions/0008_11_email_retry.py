"""emails.next_attempt_at: when a queued email that failed for now may be tried again (#11)

Retries follow capped exponential backoff with jitter over a horizon (EMAIL_RETRY_*); the
row keeps the time so the sweep re-enqueues a retry whose delayed task Redis lost, and
does not re-enqueue one early.

Revision ID: 0008_11_email_retry
Revises: 0007_9_sqlite_autoincrement
Create Date: 2026-12-03 09:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import db.types

revision: str = "0008_11_email_retry"
down_revision: str | None = "0007_9_sqlite_autoincrement"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "emails",
        sa.Column("next_attempt_at", db.types.UTCDateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    with op.batch_alter_table("emails") as batch:
        batch.drop_column("next_attempt_at")
