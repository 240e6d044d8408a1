"""Which archives a backup directory keeps: the newest of each of the last N days and M weeks."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from db.backup.archive import PREFIX, SUFFIX

STAMP = "%Y%m%dT%H%M%SZ"


def archives(folder: Path) -> list[tuple[datetime, Path]]:
    """(time taken, path) of every finished archive in `folder`, newest first."""
    found = []
    for path in folder.glob(f"{PREFIX}*{SUFFIX}") if folder.is_dir() else ():
        stamp = path.name.removeprefix(PREFIX).removesuffix(SUFFIX)
        try:
            found.append((datetime.strptime(stamp, STAMP).replace(tzinfo=UTC), path))
        except ValueError:
            continue  # not one of ours: never delete it
    return sorted(found, reverse=True)


def to_delete(
    taken: list[tuple[datetime, Path]], *, keep_daily: int, keep_weekly: int
) -> list[Path]:
    """Archives outside the retention: keep the newest per day (N days) and per ISO week (M)."""
    days: dict[object, Path] = {}
    weeks: dict[object, Path] = {}
    for when, path in taken:  # newest first: the first seen per day/week is its newest
        days.setdefault(when.date(), path)
        weeks.setdefault(when.isocalendar()[:2], path)
    keep = set(list(days.values())[:keep_daily]) | set(list(weeks.values())[:keep_weekly])
    return [path for _, path in taken if path not in keep]


def prune(folder: Path, *, keep_daily: int, keep_weekly: int) -> list[Path]:
    doomed = to_delete(archives(folder), keep_daily=keep_daily, keep_weekly=keep_weekly)
    for path in doomed:
        path.unlink(missing_ok=True)
    return doomed


def newest(folder: Path) -> datetime | None:
    found = archives(folder)
    return found[0][0] if found else None
