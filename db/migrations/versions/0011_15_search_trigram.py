"""incident tickets: a trigram index for `?search=` (PostgreSQL, pg_trgm) (#15)

`search=` is `number ILIKE '%term%' OR title ILIKE ... OR description ILIKE ...`. Without
an index PostgreSQL reads tickets in list order until a page is full: a term matching 1% of
the tickets reads about 5,000 rows per page (7-11 ms at any table size), a term matching
a handful reads the whole table (38 ms at 10,000 tickets, ten times that at 100,000).
A GIN index with `gin_trgm_ops` on the three columns serves exactly these ILIKEs (each
arm of the OR reads it; a term of fewer than three characters has no trigram and is not
served). `api/listing.py` reads it for searches known to match few rows; a search
matching many keeps the ordering index and its LIMIT.

pg_trgm ships with PostgreSQL's contrib modules (in the server package of Debian and
Ubuntu, the official images and the hosted services) and is a trusted extension, so a
database owner without superuser rights may create it. Where it cannot be created (no
contrib package, or no right to), the migration leaves the index out and warns:
`search=` keeps working by reading the table, as before; running this migration again
after installing the package does not help (it is recorded as applied), so create the
extension and the index by hand, with the statements below. SQLite: nothing.

Revision ID: 0011_15_search_trigram
Revises: 0010_15_ordering_plans
Create Date: 2026-12-03 17:00:00
"""

import warnings
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_15_search_trigram"
down_revision: str | None = "0010_15_ordering_plans"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_incident_tickets_search_trgm"
CREATE_INDEX = (
    f"CREATE INDEX {INDEX} ON incident_tickets USING gin "
    "(number gin_trgm_ops, title gin_trgm_ops, description gin_trgm_ops)"
)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    available = bind.execute(
        sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")
    ).first()
    if available is None:
        warnings.warn(
            f"pg_trgm is not installed on this PostgreSQL (its contrib package): {INDEX} is "
            "not created and search= reads the table; see 0011_15_search_trigram",
            stacklevel=1,
        )
        return
    # A savepoint: a refused CREATE EXTENSION (no right to it) must not abort the migration.
    with bind.begin_nested() as savepoint:
        try:
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
        except sa.exc.DBAPIError as error:
            savepoint.rollback()
            warnings.warn(
                f"CREATE EXTENSION pg_trgm failed ({error.orig}): {INDEX} is not created "
                "and search= reads the table; see 0011_15_search_trigram",
                stacklevel=1,
            )
            return
    op.execute(CREATE_INDEX)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP INDEX IF EXISTS {INDEX}")  # the extension stays: others may use it
