"""Restore an archive: check it, refuse to overwrite data unless told, load, migrate, mark.

Order matters: every check (checksums, backend, revision, emptiness) happens before the
target changes; the database changes in one step (see postgres.py and sqlite.py), and the
media directory is swapped in only after the database committed.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Connection

from db import migrate
from db.backup import counts, postgres, sqlite
from db.backup.archive import read_manifest, unpack
from db.backup.create import MEDIA_PREFIX, backend_of
from db.backup.manifest import ArchiveError, Manifest
from db.backup.marker import insert_marker

# Rows that hold no one's data (job timestamps): they do not make a database "not empty".
BOOKKEEPING_TABLES = frozenset({"job_runs"})


class TargetNotEmpty(ArchiveError):
    """The target holds rows and the caller did not say --force."""

    def __init__(self, row_counts: dict[str, int]) -> None:
        self.row_counts = row_counts
        super().__init__(
            f"the target database is not empty ({describe_counts(row_counts)}); "
            "restore with --force to replace it"
        )


@dataclass(frozen=True)
class RestoreResult:
    manifest: Manifest
    replaced: dict[str, int]  # non-empty tables of the target before the restore
    migrated_from: str | None  # the archive's revision when it had to be migrated
    marker_id: int
    media_files: int


def describe_counts(row_counts: dict[str, int]) -> str:
    """ "3 users, 12 shifts": the non-empty tables, for messages."""
    parts = [f"{n} {table}" for table, n in sorted(row_counts.items()) if n]
    return ", ".join(parts) or "no rows"


def check_compatible(manifest: Manifest, database_url: str) -> None:
    backend = backend_of(database_url)
    if manifest.backend != backend:
        raise ArchiveError(
            f"the archive holds a {manifest.backend} database and the target is {backend}; "
            "move data between backends with `bms export` and `bms import`"
        )
    if manifest.revision is not None and not migrate.known_revision(manifest.revision):
        raise ArchiveError(
            f"the archive's schema revision {manifest.revision!r} is newer than this BMS knows; "
            "restore it with the BMS version that wrote it"
        )


async def inspect_target(database_url: str) -> tuple[dict[str, int], int]:
    if backend_of(database_url) == "postgresql":
        return await postgres.inspect(database_url)
    return await asyncio.to_thread(sqlite.inspect, database_url)


async def restore_backup(
    archive: Path,
    database_url: str,
    *,
    media_root: Path,
    force: bool = False,
    progress: Callable[[int], None] | None = None,
) -> RestoreResult:
    """Restore `archive` into the database and media directory; raise ArchiveError on refusal."""
    manifest = await asyncio.to_thread(read_manifest, archive)
    check_compatible(manifest, database_url)
    target_counts, target_newest = await inspect_target(database_url)
    replaced = {t: n for t, n in target_counts.items() if n and t not in BOOKKEEPING_TABLES}
    if replaced and not force:
        raise TargetNotEmpty(replaced)
    media_root.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".bms-restore-", dir=media_root.parent) as scratch:
        unpacked = Path(scratch)
        await asyncio.to_thread(unpack, archive, unpacked)  # raises on any bad checksum
        marker_ids: list[int] = []

        def finish(conn: Connection) -> None:
            above = max(target_newest, counts.newest_event_id(conn))
            marker_ids.append(
                insert_marker(conn, above=above, archive_created_at=manifest.created_at)
            )

        dump_file = unpacked / manifest.database
        if manifest.backend == "postgresql":
            await postgres.restore(
                database_url,
                dump_file,
                expected_counts=manifest.row_counts,
                migrate=migrate.upgrade_connection,
                finish=finish,
                progress=progress,  # rows loaded
            )
        else:
            await asyncio.to_thread(
                sqlite.restore,
                database_url,
                dump_file,
                expected_counts=manifest.row_counts,
                migrate=migrate.upgrade_connection,
                finish=finish,
            )
        media_count = await asyncio.to_thread(_swap_media, unpacked / MEDIA_PREFIX, media_root)
    migrated_from = manifest.revision if manifest.revision != migrate.head_revision() else None
    return RestoreResult(
        manifest=manifest,
        replaced=replaced,
        migrated_from=migrated_from,
        marker_id=marker_ids[0],
        media_files=media_count,
    )


def _swap_media(restored: Path, media_root: Path) -> int:
    """Put the archive's media in place of the current directory; return the file count."""
    if not restored.is_dir():
        restored.mkdir(parents=True)
    old = media_root.with_name(media_root.name + ".replaced")
    shutil.rmtree(old, ignore_errors=True)
    if media_root.exists():
        media_root.rename(old)
    restored.rename(media_root)
    shutil.rmtree(old, ignore_errors=True)
    return sum(1 for p in media_root.rglob("*") if p.is_file())
