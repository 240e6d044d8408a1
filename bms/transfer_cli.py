"""`bms export` and `bms import`: JSON Lines out and in, with a progress bar on a terminal."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from bms.backup_cli import media_root
from bms.progress import bar as progress_bar
from bms.settings import Settings

MAX_ERRORS_SHOWN = 50


async def _export(settings: Settings, out: IO[bytes], *, credentials: bool) -> int:
    from db.store import Store
    from domain.transfer.export import count_rows, export_lines

    store = Store(settings.effective_database_url, pool_max=2)
    await store.connect()
    written = 0
    try:
        with progress_bar(await count_rows(store), "rows") as bar:
            lines = export_lines(store, media_root=media_root(settings), credentials=credentials)
            async for line in lines:
                out.write(line)
                written += 1
                if bar is not None:
                    bar.update(1)
    finally:
        await store.disconnect()
    return written


def run_export(settings: Settings, args: argparse.Namespace) -> int:
    target = Path(args.to) if args.to else None
    try:
        credentials = not args.without_credentials
        if target is None:
            count = asyncio.run(_export(settings, sys.stdout.buffer, credentials=credentials))
        else:
            partial = target.with_name(target.name + ".partial")
            partial.touch(mode=0o600)  # password hashes: owner-only
            with partial.open("wb") as out:
                count = asyncio.run(_export(settings, out, credentials=credentials))
            partial.replace(target)
    except Exception as exc:  # database unreachable, disk full: one line
        print(f"bms: export failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"bms: exported {count:,} lines" + (f" to {target}" if target else ""), file=sys.stderr)
    return 0


def _lines(path: Path, bar: Any) -> Iterator[bytes]:
    with path.open("rb") as fh:
        for raw in fh:
            if bar is not None:
                bar.update(len(raw))
            yield raw


async def _import(settings: Settings, path: Path, size: int, *, dry_run: bool) -> Any:
    from db.store import Store
    from domain.transfer.load import load_lines

    store = Store(settings.effective_database_url, pool_max=2)
    await store.connect()
    try:
        with progress_bar(size, "B", scale=True) as bar:
            return await load_lines(
                store, _lines(path, bar), media_root=media_root(settings), dry_run=dry_run
            )
    finally:
        await store.disconnect()


def run_import(settings: Settings, args: argparse.Namespace) -> int:
    from bms.cli import _ensure_schema

    path = Path(args.file)
    if not path.is_file():
        print(f"bms: import failed: {path}: no such file", file=sys.stderr)
        return 1
    if not _ensure_schema(settings):
        return 1
    try:
        report = asyncio.run(_import(settings, path, path.stat().st_size, dry_run=args.dry_run))
    except Exception as exc:
        print(
            f"bms: import failed, nothing was written: {type(exc).__name__}: {exc}", file=sys.stderr
        )
        return 1
    if report.errors:
        for error in report.errors[:MAX_ERRORS_SHOWN]:
            print(f"bms: {path}: {error}", file=sys.stderr)
        more = len(report.errors) - MAX_ERRORS_SHOWN
        if more > 0:
            print(f"bms: ... and {more} more errors", file=sys.stderr)
        print(f"bms: {len(report.errors)} errors; nothing was written", file=sys.stderr)
        return 1
    created = ", ".join(f"{n} {k}" for k, n in report.created.items()) or "nothing"
    matched = ", ".join(f"{n} {k}" for k, n in report.matched.items())
    verb = "would create" if args.dry_run else "created"
    print(
        f"bms: {verb} {created}"
        + (f"; reused existing {matched}" if matched else "")
        + (" (dry run: nothing was written)" if args.dry_run else "")
    )
    return 0


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from bms import cli

    export = sub.add_parser("export", help="write every resource as JSON Lines")
    export.add_argument("--to", metavar="FILE", help="output file (default: stdout)")
    export.add_argument(
        "--without-credentials",
        action="store_true",
        help="leave out password hashes (imported users then need a new password)",
    )
    export.set_defaults(handler=lambda a: run_export(cli._settings_or_exit(), a))
    load = sub.add_parser("import", help="load a JSON Lines file, all or nothing")
    load.add_argument("file")
    load.add_argument("--dry-run", action="store_true", help="check every line, write nothing")
    load.set_defaults(handler=lambda a: run_import(cli._settings_or_exit(), a))
