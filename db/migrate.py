"""Apply and inspect Alembic migrations programmatically (used by `bms migrate` and tests)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from db.urls import async_driver_url

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def _ensure_sqlite_dir(database_url: str) -> None:
    url = async_driver_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database up to `revision`; blocking, run it outside the event loop."""
    _ensure_sqlite_dir(database_url)
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    """Take the database back to `revision`; blocking (benchmarks compare older trees)."""
    command.downgrade(alembic_config(database_url), revision)


def upgrade_connection(connection: Connection) -> None:
    """Bring the database behind `connection` to head inside the caller's transaction."""
    config = alembic_config("sqlite://")
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def known_revision(revision: str) -> bool:
    """True when `revision` is one of our migrations (an archive from newer code is not)."""
    try:
        return (
            ScriptDirectory.from_config(alembic_config("sqlite://")).get_revision(revision)
            is not None
        )
    except Exception:  # alembic raises several kinds for unknown or malformed ids
        return False


def pending_revisions(current: str | None) -> list[str]:
    """Revisions between `current` and head, oldest first (empty when up to date)."""
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    head = script.get_current_head()
    if current == head:
        return []
    revisions = [r.revision for r in script.iterate_revisions(head, current or "base")]
    return list(reversed(revisions))


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


async def current_revision(database_url: str) -> str | None:
    """Return the revision the database is at, or None when it was never migrated."""
    _ensure_sqlite_dir(database_url)
    engine = create_async_engine(async_driver_url(database_url), poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda sync_conn: MigrationContext.configure(sync_conn).get_current_revision()
            )
    finally:
        await engine.dispose()


async def is_up_to_date(database_url: str) -> bool:
    return await current_revision(database_url) == head_revision()


async def upgrade_async(database_url: str) -> None:
    """Run `upgrade` in a thread: Alembic's env starts its own event loop."""
    await asyncio.to_thread(upgrade, database_url)
