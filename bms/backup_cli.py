"""`bms backup`, `bms backup verify` and `bms restore`: thin wrappers over db.backup."""

from __future__ import annotations

import argparse
import asyncio
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from bms.settings import Settings

BACKUP_SUBDIR = "backups"


def bms_version() -> str:
    try:
        return metadata.version("bms")
    except metadata.PackageNotFoundError:
        return "unknown"


def media_root(settings: Settings) -> Path:
    """Where uploaded media live (api.resources.profiles serves them from the same place)."""
    return settings.data_dir / "media"


def default_backup_dir(settings: Settings) -> Path:
    return settings.backup_dir or settings.data_dir / BACKUP_SUBDIR


def _fail(message: str) -> int:
    print(f"bms: {message}", file=sys.stderr)
    return 1


async def _backup_and_record(settings: Settings, out_dir: Path) -> Any:
    """Write the archive, then note its time where /metrics reads it."""
    from db.backup.create import create_backup
    from db.backup.record import record_backup
    from db.store import Store

    result = await create_backup(
        settings.effective_database_url,
        media_root=media_root(settings),
        out_dir=out_dir,
        bms_version=bms_version(),
    )
    store = Store(settings.effective_database_url, pool_max=1)
    await store.connect()
    try:
        await record_backup(store, at=store.clock())
    finally:
        await store.disconnect()
    return result


def run_backup(settings: Settings, args: argparse.Namespace) -> int:
    from db.backup.manifest import ArchiveError
    from db.backup.restore import describe_counts

    out_dir = Path(args.to) if args.to else default_backup_dir(settings)
    try:
        result = asyncio.run(_backup_and_record(settings, out_dir))
    except ArchiveError as exc:
        return _fail(f"backup failed: {exc}")
    except Exception as exc:  # database unreachable, disk full: one line, not a traceback
        return _fail(f"backup failed: {type(exc).__name__}: {exc}")
    manifest = result.manifest
    print(
        f"bms: wrote {result.path} ({result.size_bytes:,} bytes; revision {manifest.revision}; "
        f"{describe_counts(manifest.row_counts)}; "
        f"{len(manifest.members) - 1} media files)"
    )
    return 0


def run_verify(args: argparse.Namespace) -> int:
    from bms.progress import bar, updater
    from db import migrate
    from db.backup.archive import unpack
    from db.backup.manifest import ArchiveError

    archive = Path(args.archive)
    try:
        with bar(archive.stat().st_size if archive.is_file() else None, "B", scale=True) as b:
            manifest = unpack(archive, None, progress=updater(b))
    except ArchiveError as exc:
        return _fail(f"{args.archive}: {exc}")
    note = ""
    if manifest.revision is not None and not migrate.known_revision(manifest.revision):
        note = " (newer than this BMS: restore it with the version that wrote it)"
    print(
        f"bms: {args.archive} is intact: {manifest.backend}, revision {manifest.revision}{note}, "
        f"BMS {manifest.bms_version}, {manifest.created_at}, "
        f"{manifest.total_rows:,} rows, {len(manifest.members)} members checked"
    )
    return 0


async def _restore(archive: Path, url: str, settings: Settings, *, force: bool) -> Any:
    """Restore with a bar over the rows loaded (the manifest says how many to expect)."""
    from bms.progress import bar, updater
    from db.backup.archive import read_manifest
    from db.backup.restore import restore_backup

    total = (await asyncio.to_thread(read_manifest, archive)).total_rows
    with bar(total, "rows", desc="restore") as b:
        return await restore_backup(
            archive, url, media_root=media_root(settings), force=force, progress=updater(b)
        )


def run_restore(settings: Settings, args: argparse.Namespace) -> int:
    from db.backup.manifest import ArchiveError
    from db.backup.restore import describe_counts, inspect_target

    url = settings.effective_database_url
    try:
        from db.backup.create import backend_of

        if backend_of(url) == "postgresql":
            from db.backup.postgres import other_sessions

            others = asyncio.run(other_sessions(url))
            if others:
                print(
                    f"bms: warning: {others} other sessions use this database; stop bms serve, "
                    "worker and scheduler before a restore (they keep stale statements)",
                    file=sys.stderr,
                )
        if args.force:
            counts, _ = asyncio.run(inspect_target(url))
            if any(counts.values()):
                print(f"bms: --force: replacing {describe_counts(counts)}")
        result = asyncio.run(_restore(Path(args.archive), url, settings, force=args.force))
    except ArchiveError as exc:
        return _fail(f"restore refused: {exc}; nothing was changed")
    except Exception as exc:  # a database error mid-restore: its transaction rolled back
        return _fail(f"restore failed, nothing was changed: {type(exc).__name__}: {exc}")
    manifest = result.manifest
    migrated = f", migrated from revision {result.migrated_from}" if result.migrated_from else ""
    print(
        f"bms: restored {args.archive} (taken {manifest.created_at}{migrated}): "
        f"{describe_counts(manifest.row_counts)}; {result.media_files} media files; "
        f"live clients resync from event {result.marker_id}"
    )
    return 0


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `backup` (with `verify`) and `restore` on the main parser."""
    from bms import cli

    backup = sub.add_parser("backup", help="back up the database and media into one archive")
    backup.add_argument(
        "--to", metavar="DIR", help="directory for the archive (default BACKUP_DIR)"
    )
    backup.set_defaults(handler=lambda a: run_backup(cli._settings_or_exit(), a))
    actions = backup.add_subparsers(dest="backup_command", metavar="verify")
    verify = actions.add_parser("verify", help="check an archive's checksums without restoring")
    verify.add_argument("archive")
    verify.set_defaults(handler=run_verify)

    restore = sub.add_parser("restore", help="restore an archive into an empty database")
    restore.add_argument("archive")
    restore.add_argument(
        "--force", action="store_true", help="replace a database that holds data (says what)"
    )
    restore.set_defaults(handler=lambda a: run_restore(cli._settings_or_exit(), a))
