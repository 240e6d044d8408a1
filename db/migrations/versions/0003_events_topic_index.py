"""events: index (topic, id) for a topic's newest id and replays by topic

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 09:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The events table holds the retention window only (7 days by default): a plain build.
    op.create_index(op.f("ix_events_topic_id"), "events", ["topic", "id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_events_topic_id"), table_name="events")
