"""SQLite: ids are never reused (AUTOINCREMENT), as on PostgreSQL (#9)

Without AUTOINCREMENT, SQLite hands the id of the newest deleted row to the next insert, so
a notification link or an iCalendar UID could come to point at another object. Each table
with an integer `id` is rebuilt with it (rows and ids kept). PostgreSQL sequences never
reuse a value: nothing to do there.

Revision ID: 0007_9_sqlite_autoincrement
Revises: 0006_10_token_family
Create Date: 2026-12-03 09:05:00
"""

import warnings
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_9_sqlite_autoincrement"
down_revision: str | None = "0006_10_token_family"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Every table whose primary key is one integer `id`, referenced tables first.
TABLES = (
    "events", "incident_types", "locations", "login_failures", "users", "api_keys", "emails",
    "facilities", "history", "notifications", "profiles", "series", "sessions",
    "ticket_comments", "time_off_requests", "calendar_feeds", "incident_tickets",
    "scheduled_events", "service_tickets", "shifts", "time_entries",
)  # fmt: skip


def _rebuild(autoincrement: bool) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    for name in TABLES:
        # Alembic rebuilds a table from reflection, which cannot see expression indexes
        # (e.g. the priority rank one of 0002): keep each index's own SQL and put back
        # whichever the rebuild dropped.
        indexes = bind.execute(
            sa.text(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = :t"
                " AND sql IS NOT NULL"
            ),
            {"t": name},
        ).all()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based")
            with op.batch_alter_table(
                name, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
            ):
                pass
        kept = {
            row[0]
            for row in bind.execute(
                sa.text("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = :t"),
                {"t": name},
            )
        }
        for index_name, sql in indexes:
            if index_name not in kept:
                op.execute(sql)


def upgrade() -> None:
    _rebuild(True)


def downgrade() -> None:
    _rebuild(False)
