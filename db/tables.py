"""Every table of BMS in one MetaData, with named constraints and indexes."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from db.priorities import priority_rank
from db.types import BigID, JSONText, UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


def _timestamps() -> list[sa.Column[Any]]:
    return [
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    ]


def _fk(
    column: str, target: str, *, nullable: bool = True, ondelete: str = "RESTRICT"
) -> sa.Column[Any]:
    """A foreign key column. Give it an index that it leads (alone, or as the first column
    of one), or every delete of a referenced row scans this table; a test checks
    (tests/db/test_foreign_key_indexes.py)."""
    return sa.Column(
        column, sa.Integer, sa.ForeignKey(target, ondelete=ondelete), nullable=nullable
    )


# --- people and access -------------------------------------------------------------------

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("username", sa.String(150), nullable=False, unique=True),
    sa.Column("email", sa.String(254), nullable=False, server_default=""),
    sa.Column("first_name", sa.String(150), nullable=False, server_default=""),
    sa.Column("last_name", sa.String(150), nullable=False, server_default=""),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
    # Tokens issued before this instant are void (password change, deactivation).
    sa.Column("credentials_changed_at", UTCDateTime, nullable=False),
    sa.Column("last_login", UTCDateTime, nullable=True),
    *_timestamps(),
    sa.CheckConstraint("role IN ('admin','manager','operator','viewer')", name="role"),
)

locations = sa.Table(
    "locations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("code", sa.String(16), nullable=False, unique=True),
    sa.Column("address", sa.Text, nullable=False, server_default=""),
    sa.Column("timezone", sa.String(64), nullable=False),
    *_timestamps(),
)

profiles = sa.Table(
    "profiles",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    _fk("user_id", "users.id", nullable=False, ondelete="CASCADE"),
    sa.Column("title", sa.String(200), nullable=False, server_default=""),
    sa.Column("department", sa.String(200), nullable=False, server_default=""),
    sa.Column("phone", sa.String(50), nullable=False, server_default=""),
    _fk("location_id", "locations.id"),
    sa.Column("profile_image", sa.String(255), nullable=True),
    sa.Column("email_notifications", sa.Boolean, nullable=False, server_default=sa.true()),
    *_timestamps(),
    sa.UniqueConstraint("user_id"),
    sa.Index(None, "department"),
    sa.Index(None, "location_id"),
)

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    # Only a hash of the cookie value is stored: a database leak yields no live sessions.
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    _fk("user_id", "users.id", nullable=False, ondelete="CASCADE"),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index(None, "user_id"),
    sa.Index(None, "expires_at"),
)

auth_tokens = sa.Table(
    "auth_tokens",
    metadata,
    sa.Column("jti", sa.String(64), primary_key=True),
    _fk("user_id", "users.id", nullable=False, ondelete="CASCADE"),
    sa.Column("kind", sa.String(8), nullable=False),  # access | refresh
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("revoked_at", UTCDateTime, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    # The tokens of one login: rotation stays in it, logout and refresh reuse end it (#10).
    sa.Column("family", sa.String(64), nullable=False),
    sa.CheckConstraint("kind IN ('access','refresh')", name="kind"),
    sa.Index(None, "user_id"),
    sa.Index(None, "expires_at"),
    sa.Index(None, "family"),
)

# An API key's secret is shown once; only its SHA-256 is kept (it is long and random:
# no slow hash needed). A key acts as its user; `scope` 'read' refuses unsafe methods.
api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    _fk("user_id", "users.id", nullable=False, ondelete="CASCADE"),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("prefix", sa.String(16), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("scope", sa.String(10), nullable=False),
    _fk("location_id", "locations.id", ondelete="CASCADE"),
    sa.Column("expires_at", UTCDateTime, nullable=True),
    sa.Column("last_used_at", UTCDateTime, nullable=True),
    *_timestamps(),
    sa.CheckConstraint("scope IN ('read','read-write')", name="scope"),
    sa.Index(None, "user_id"),
    sa.Index(None, "location_id"),
)

login_failures = sa.Table(
    "login_failures",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("username", sa.String(150), nullable=False),
    sa.Column("client_ip", sa.String(64), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Index(None, "username", "at"),
    sa.Index(None, "client_ip", "at"),
)

# --- sites ---------------------------------------------------------------------------------

facilities = sa.Table(
    "facilities",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    _fk("location_id", "locations.id", nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, server_default="operational"),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    *_timestamps(),
    sa.UniqueConstraint("location_id", "name"),
    sa.Index(None, "kind"),
    sa.Index(None, "status"),
    sa.Index(None, "name"),
)

# --- schedules -----------------------------------------------------------------------------

series = sa.Table(
    "series",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("kind", sa.String(24), nullable=False),  # shift | scheduled_event
    sa.Column("rrule", sa.Text, nullable=False),
    sa.Column("dtstart", UTCDateTime, nullable=False),
    sa.Column("duration_secs", sa.Integer, nullable=False),
    sa.Column("timezone", sa.String(64), nullable=False),
    # Field values every occurrence copies (user, facility, position, attendees, ...).
    sa.Column("template", JSONText, nullable=False),
    sa.Column("materialized_until", UTCDateTime, nullable=True),
    _fk("created_by", "users.id", ondelete="SET NULL"),
    *_timestamps(),
    sa.CheckConstraint("kind IN ('shift','scheduled_event')", name="kind"),
    sa.Index(None, "created_by"),
)

shifts = sa.Table(
    "shifts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    _fk("user_id", "users.id", nullable=False),
    _fk("facility_id", "facilities.id", nullable=False),
    sa.Column("position", sa.String(200), nullable=False, server_default=""),
    sa.Column("start", UTCDateTime, nullable=False),
    sa.Column("end", UTCDateTime, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, server_default="scheduled"),
    sa.Column("notes", sa.Text, nullable=False, server_default=""),
    _fk("series_id", "series.id", ondelete="SET NULL"),
    sa.Column("reminded_at", UTCDateTime, nullable=True),
    # The first and last day the shift covers at its facility, for time off's conflicts
    # (the rule: db/local_days.py; domain/local_days.py writes them; migration 0018).
    sa.Column("local_first_day", sa.Date, nullable=False),
    sa.Column("local_last_day", sa.Date, nullable=False),
    *_timestamps(),
    sa.CheckConstraint('"end" > start', name="end_after_start"),
    sa.UniqueConstraint("series_id", "start"),
    sa.Index(None, "user_id", "start"),
    sa.Index(None, "facility_id", "start"),
    sa.Index(None, "start"),
    sa.Index(None, "end"),
    sa.Index(None, "status"),
)

scheduled_events = sa.Table(
    "scheduled_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("kind", sa.String(16), nullable=False),
    _fk("facility_id", "facilities.id"),
    sa.Column("start", UTCDateTime, nullable=False),
    sa.Column("end", UTCDateTime, nullable=False),
    sa.Column("all_day", sa.Boolean, nullable=False, server_default=sa.false()),
    _fk("created_by", "users.id", ondelete="SET NULL"),
    _fk("series_id", "series.id", ondelete="SET NULL"),
    *_timestamps(),
    sa.CheckConstraint('"end" > start', name="end_after_start"),
    sa.UniqueConstraint("series_id", "start"),
    sa.Index(None, "facility_id", "start"),
    sa.Index(None, "kind"),
    sa.Index(None, "start"),
    sa.Index(None, "created_by"),
)

scheduled_event_attendees = sa.Table(
    "scheduled_event_attendees",
    metadata,
    _fk("event_id", "scheduled_events.id", nullable=False, ondelete="CASCADE"),
    _fk("user_id", "users.id", nullable=False, ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("event_id", "user_id"),
    sa.Index(None, "user_id"),
)

time_off_requests = sa.Table(
    "time_off_requests",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    _fk("user_id", "users.id", nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("start_date", sa.Date, nullable=False),
    sa.Column("end_date", sa.Date, nullable=False),
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
    sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
    _fk("reviewed_by", "users.id", ondelete="SET NULL"),
    sa.Column("reviewed_at", UTCDateTime, nullable=True),
    sa.Column("review_note", sa.Text, nullable=False, server_default=""),
    *_timestamps(),
    sa.CheckConstraint("end_date >= start_date", name="end_not_before_start"),
    sa.Index(None, "user_id", "start_date"),
    sa.Index(None, "status"),
    sa.Index(None, "start_date"),
    sa.Index(None, "created_at"),
    sa.Index(None, "reviewed_by"),
)

# --- tickets -------------------------------------------------------------------------------

incident_types = sa.Table(
    "incident_types",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(100), nullable=False, unique=True),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("default_priority", sa.String(16), nullable=False, server_default="medium"),
    sa.Column("color", sa.String(7), nullable=False, server_default="#808080"),
    *_timestamps(),
)

# What a ticket's `?search=` reads (migration 0017): number, title and description in
# one lowered text, joined by newlines, which a search term cannot hold (so no match spans
# two fields). The lowered term found in it (api/listing.py, `_search_clause`) is what
# ILIKE on each field found, at a third of its cost on PostgreSQL, where lowering every
# value is the price of ILIKE. Stored on PostgreSQL; SQLite can add only a virtual one
# (computed when read).
SEARCH_TEXT = "lower(number || '\n' || title || '\n' || description)"


def _search_text() -> sa.Column[str]:
    return sa.Column("search_text", sa.Text, sa.Computed(SEARCH_TEXT, persisted=True))


incident_tickets = sa.Table(
    "incident_tickets",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("number", sa.String(16), nullable=False, unique=True),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    _fk("incident_type_id", "incident_types.id", nullable=False),
    _fk("facility_id", "facilities.id"),
    sa.Column("priority", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, server_default="open"),
    sa.Column("on_air_impact", sa.Boolean, nullable=False, server_default=sa.false()),
    _fk("reported_by", "users.id", nullable=False),
    _fk("assigned_to", "users.id"),
    sa.Column("occurred_at", UTCDateTime, nullable=False),
    sa.Column("acknowledged_at", UTCDateTime, nullable=True),
    sa.Column("resolved_at", UTCDateTime, nullable=True),
    sa.Column("closed_at", UTCDateTime, nullable=True),
    sa.Column("resolution", sa.Text, nullable=False, server_default=""),
    sa.Column("escalated_at", UTCDateTime, nullable=True),
    *_timestamps(),
    _search_text(),
    # With `id`: the default list order (-created_at, -id) filtered by status, sort-free.
    sa.Index(None, "status", "created_at", "id"),
    sa.Index(None, "priority"),
    # A facility's tickets of one status (a wall display's list), in the default order.
    sa.Index(None, "facility_id", "status", "created_at", "id"),
    sa.Index(None, "incident_type_id"),
    sa.Index(None, "assigned_to"),
    sa.Index(None, "reported_by"),
    # With `id`: the default order unfiltered, sort-free, and a deep page's ids index-only.
    sa.Index(None, "created_at", "id"),
)
# `?status=open&ordering=-priority` reads the first page off this index instead of sorting.
sa.Index(
    "ix_incident_tickets_status_priority_rank_id",
    incident_tickets.c.status,
    sa.sql.expression.Grouping(priority_rank(incident_tickets.c.priority)).desc(),
    incident_tickets.c.id.desc(),
)


def _ordering_indexes(table: sa.Table, *columns: str) -> None:
    """Indexes that give a ticket list each ordering without sorting the table (#15).

    Ties break on `-id`. A near-unique column: `(col, id)`, read backwards for `-col`, and
    forwards for `col` with only runs of equal values reordered. A few-valued one (the
    priority rank, the status), whose runs are a fifth of the table: one index per
    direction, `(col, id)` for `-col`, `(col, id DESC)` for `col`. Migrations
    0009_15_ordering_indexes, 0010_15_ordering_plans (which also gives PostgreSQL
    statistics on status and priority together, for the planner's sake) and
    0015_15_status_ordering_indexes.
    """
    for column in columns:
        sa.Index(None, table.c[column], table.c.id)
    rank = sa.sql.expression.Grouping(priority_rank(table.c.priority))
    for name, few_valued in (("priority_rank", rank), ("status", table.c.status)):
        sa.Index(f"ix_{table.name}_{name}_id", few_valued, table.c.id)
        sa.Index(f"ix_{table.name}_{name}_id_desc", few_valued, table.c.id.desc())


_ordering_indexes(incident_tickets, "title", "occurred_at", "updated_at")


def _search_index(table: sa.Table) -> None:
    """`?search=` on PostgreSQL: trigrams (pg_trgm) of `search_text`, read for a search that
    matches few tickets (api/listing.py). Migrations 0011/0012 (then on the three columns)
    and 0017 leave it out where pg_trgm is missing."""
    sa.Index(
        f"ix_{table.name}_search_trgm",
        table.c.search_text,
        postgresql_using="gin",
        postgresql_ops={"search_text": "gin_trgm_ops"},
    ).ddl_if(dialect="postgresql")


_search_index(incident_tickets)

service_tickets = sa.Table(
    "service_tickets",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("number", sa.String(16), nullable=False, unique=True),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("category", sa.String(16), nullable=False),
    _fk("facility_id", "facilities.id"),
    sa.Column("priority", sa.String(16), nullable=False, server_default="medium"),
    sa.Column("status", sa.String(16), nullable=False, server_default="new"),
    _fk("requested_by", "users.id", nullable=False),
    _fk("assigned_to", "users.id"),
    sa.Column("due_date", sa.Date, nullable=True),
    sa.Column("completed_at", UTCDateTime, nullable=True),
    *_timestamps(),
    _search_text(),
    # With `id`: the default list order (-created_at, -id), filtered or not, sort-free.
    sa.Index(None, "status", "created_at", "id"),
    sa.Index(None, "priority"),
    sa.Index(None, "category"),
    # A facility's tickets of one status (a wall display's list), in the default order.
    sa.Index(None, "facility_id", "status", "created_at", "id"),
    sa.Index(None, "assigned_to"),
    sa.Index(None, "requested_by"),
    sa.Index(None, "due_date"),
    sa.Index(None, "created_at", "id"),
)
_ordering_indexes(service_tickets, "title", "completed_at", "updated_at")
_search_index(service_tickets)

# Ticket numbers come from a counter row updated inside the creating transaction:
# no duplicates under concurrency, never reused, same on PostgreSQL and SQLite.
counters = sa.Table(
    "counters",
    metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
)

ticket_comments = sa.Table(
    "ticket_comments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("subject", sa.String(32), nullable=False),  # incident-tickets | service-tickets
    sa.Column("subject_id", sa.Integer, nullable=False),
    _fk("author_id", "users.id", nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    *_timestamps(),
    sa.Index(None, "subject", "subject_id", "id"),
    sa.Index(None, "author_id"),
)

history = sa.Table(
    "history",
    metadata,
    sa.Column("id", BigID, primary_key=True, autoincrement=True),
    sa.Column("subject", sa.String(32), nullable=False),  # the resource's topic name
    sa.Column("subject_id", sa.Integer, nullable=False),
    _fk("actor_id", "users.id", ondelete="SET NULL"),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("changes", JSONText, nullable=False),
    sa.Index(None, "subject", "subject_id", "id"),
    sa.Index(None, "actor_id"),
)

# --- timesheets ----------------------------------------------------------------------------

time_entries = sa.Table(
    "time_entries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    _fk("user_id", "users.id", nullable=False),
    sa.Column("date", sa.Date, nullable=False),
    sa.Column("start", UTCDateTime, nullable=False),
    sa.Column("end", UTCDateTime, nullable=False),
    _fk("shift_id", "shifts.id", ondelete="SET NULL"),
    _fk("incident_ticket_id", "incident_tickets.id", ondelete="SET NULL"),
    _fk("service_ticket_id", "service_tickets.id", ondelete="SET NULL"),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("status", sa.String(16), nullable=False, server_default="draft"),
    _fk("reviewed_by", "users.id", ondelete="SET NULL"),
    sa.Column("reviewed_at", UTCDateTime, nullable=True),
    *_timestamps(),
    sa.CheckConstraint('"end" > start', name="end_after_start"),
    sa.Index(None, "user_id", "date"),
    sa.Index(None, "status"),
    sa.Index(None, "date"),
    sa.Index(None, "shift_id"),
    sa.Index(None, "incident_ticket_id"),
    sa.Index(None, "service_ticket_id"),
    sa.Index(None, "reviewed_by"),
)

# --- messages ------------------------------------------------------------------------------

notifications = sa.Table(
    "notifications",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    _fk("user_id", "users.id", nullable=False, ondelete="CASCADE"),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("body", sa.Text, nullable=False, server_default=""),
    sa.Column("link", sa.String(200), nullable=False, server_default=""),
    sa.Column("read", sa.Boolean, nullable=False, server_default=sa.false()),
    *_timestamps(),
    sa.Index(None, "user_id", "read", "id"),
)

emails = sa.Table(
    "emails",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("to", JSONText, nullable=False),
    sa.Column("subject", sa.String(255), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("status", sa.String(8), nullable=False, server_default="queued"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("sent_at", UTCDateTime, nullable=True),
    # A queued email that failed for now is not tried again before this (#11).
    sa.Column("next_attempt_at", UTCDateTime, nullable=True),
    sa.Column("error", sa.Text, nullable=False, server_default=""),
    # Message-ID sent with the mail; also guards against sending twice.
    sa.Column("idempotency_key", sa.String(64), nullable=False, unique=True),
    _fk("requested_by", "users.id", ondelete="SET NULL"),
    *_timestamps(),
    sa.CheckConstraint("status IN ('queued','sending','sent','failed')", name="status"),
    sa.Index(None, "status"),
    sa.Index(None, "requested_by"),
)

calendar_feeds = sa.Table(
    "calendar_feeds",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    _fk("owner_id", "users.id", nullable=False, ondelete="CASCADE"),
    _fk("facility_id", "facilities.id", ondelete="CASCADE"),
    sa.Column("revoked_at", UTCDateTime, nullable=True),
    *_timestamps(),
    sa.Index(None, "owner_id"),
    sa.Index(None, "facility_id"),
)

# --- realtime and jobs ---------------------------------------------------------------------

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", BigID, primary_key=True, autoincrement=True),
    sa.Column("topic", sa.String(32), nullable=False),
    sa.Column("action", sa.String(8), nullable=False),
    sa.Column("object_id", sa.Integer, nullable=False),
    # The serialized REST representation, stored once and sent as is.
    sa.Column("data", sa.Text, nullable=False),
    # Set for rows only their owner (and managers) may see; notifications: owner only.
    sa.Column("owner_id", sa.Integer, nullable=True),
    sa.Column("private", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("published", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index(None, "created_at"),
    # A topic's newest id (the version list totals are cached by) and replays by topic.
    sa.Index(None, "topic", "id"),
    sa.Index(
        "ix_events_unpublished",
        "id",
        postgresql_where=sa.text("NOT published"),
        sqlite_where=sa.text("published = 0"),
    ),
    # Ids must never be reused after retention empties the table (clients resume by id).
    sqlite_autoincrement=True,
)

job_runs = sa.Table(
    "job_runs",
    metadata,
    sa.Column("job", sa.String(64), primary_key=True),
    sa.Column("last_run_at", UTCDateTime, nullable=False),
    # When a run last finished without error (#14: the "job not run on time" alert).
    sa.Column("last_success_at", UTCDateTime, nullable=True),
)


# SQLite reuses the newest deleted row's id unless a table says AUTOINCREMENT; ids are never
# reused on either backend (migration 0007_9_sqlite_autoincrement).
for _table in metadata.tables.values():
    if "id" in _table.c and list(_table.primary_key.columns) == [_table.c.id]:
        _table.dialect_options["sqlite"]["autoincrement"] = True
