"""Write a backup: a consistent database dump plus the media files, in one archive."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import make_url

from db.backup import postgres, sqlite
from db.backup.archive import PREFIX, SUFFIX, write_archive
from db.backup.manifest import Manifest

DUMP_MEMBERS = {"postgresql": "database.dump", "sqlite": "database.sqlite3"}
MEDIA_PREFIX = "media/"


@dataclass(frozen=True)
class BackupResult:
    path: Path
    manifest: Manifest
    size_bytes: int


def backend_of(database_url: str) -> str:
    return make_url(database_url).get_backend_name()


def archive_name(now: datetime) -> str:
    return f"{PREFIX}{now.strftime('%Y%m%dT%H%M%S')}Z{SUFFIX}"


def media_files(media_root: Path) -> Iterator[tuple[str, Path]]:
    """(member name, path) of every regular file under the media directory, sorted."""
    if not media_root.is_dir():
        return
    for path in sorted(media_root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            yield MEDIA_PREFIX + path.relative_to(media_root).as_posix(), path


async def create_backup(
    database_url: str, *, media_root: Path, out_dir: Path, bms_version: str
) -> BackupResult:
    """Dump the database and copy the media into `out_dir/bms-backup-<UTC time>.tar`."""
    backend = backend_of(database_url)
    now = datetime.now(UTC)
    await asyncio.to_thread(out_dir.mkdir, parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".bms-backup-", dir=out_dir) as scratch:
        dump_file = Path(scratch) / DUMP_MEMBERS[backend]
        if backend == "postgresql":
            revision, row_counts = await postgres.dump(database_url, dump_file)
        else:
            revision, row_counts = await asyncio.to_thread(sqlite.dump, database_url, dump_file)
        manifest = Manifest(
            backend=backend,
            revision=revision,
            bms_version=bms_version,
            created_at=now.isoformat().replace("+00:00", "Z"),
            row_counts=row_counts,
            database=dump_file.name,
        )
        files = [(dump_file.name, dump_file), *media_files(media_root)]
        path = write_archive(out_dir / archive_name(now), manifest, files)
    return BackupResult(path=path, manifest=manifest, size_bytes=path.stat().st_size)
