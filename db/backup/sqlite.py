"""SQLite: copies through the online backup API, safe while the server writes.

A restore prepares a migrated copy beside the target, then copies it over the target with
the same API: that last step runs as one write transaction on the target, so a failure
leaves it as it was, and its WAL and other connections stay consistent.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.pool import NullPool

from db.backup import counts
from db.backup.manifest import ArchiveError

BUSY_TIMEOUT_SECS = 30


def database_path(database_url: str) -> Path:
    name = make_url(database_url).database
    if not name or name == ":memory:":
        raise ArchiveError("an in-memory SQLite database cannot be backed up or restored")
    return Path(name)


@contextlib.contextmanager
def _sync(path: Path) -> Iterator[Connection]:
    engine = sa.create_engine(f"sqlite:///{path}", poolclass=NullPool)
    try:
        with engine.begin() as conn:
            yield conn
    finally:
        engine.dispose()


def copy_database(source: Path, target: Path) -> None:
    """Copy `source` into `target` page by page under SQLite's locking (online backup)."""
    src = sqlite3.connect(source, timeout=BUSY_TIMEOUT_SECS)
    try:
        dst = sqlite3.connect(target, timeout=BUSY_TIMEOUT_SECS)
        try:
            with dst:
                src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()


def dump(database_url: str, target: Path) -> tuple[str | None, dict[str, int]]:
    """Back the database up into `target`; return (revision, row counts) of the copy."""
    source = database_path(database_url)
    if not source.is_file():
        raise ArchiveError(f"{source}: no such database file")
    copy_database(source, target)
    with _sync(target) as conn:
        return counts.revision(conn), counts.row_counts(conn)


def inspect(database_url: str) -> tuple[dict[str, int], int]:
    """(row counts, newest event id) of the target; an absent file is an empty database."""
    path = database_path(database_url)
    if not path.is_file():
        return {}, 0
    with _sync(path) as conn:
        return counts.row_counts(conn), counts.newest_event_id(conn)


def restore(
    database_url: str,
    copy: Path,
    *,
    expected_counts: dict[str, int],
    migrate: Callable[[Connection], None],
    finish: Callable[[Connection], None],
) -> None:
    """Check and migrate `copy` (a scratch file), mark it, then copy it over the target."""
    with _sync(copy) as conn:
        if counts.row_counts(conn) != expected_counts:
            raise ArchiveError("restored row counts differ from the manifest")
    with _sync(copy) as conn:
        conn.exec_driver_sql("PRAGMA foreign_keys = OFF")
        migrate(conn)
    with _sync(copy) as conn:
        finish(conn)
    target = database_path(database_url)
    target.parent.mkdir(parents=True, exist_ok=True)
    copy_database(copy, target)
