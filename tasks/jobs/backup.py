"""Job: the nightly backup. Runs every few minutes, backs up once a day after BACKUP_TIME.

Deciding from the archives on disk makes it safe to run twice and to miss a tick: a day
without an archive gets one at the first run after the configured time.
"""

from __future__ import annotations

from datetime import datetime, time
from importlib import metadata
from typing import Any

from db.backup.create import create_backup
from db.backup.record import record_backup
from db.backup.retention import archives, prune
from db.store import Store
from tasks.config import TaskSettings

CHECK_INTERVAL_SECS = 300


def is_due(now: datetime, *, backup_time: str, taken: list[datetime]) -> bool:
    """True when today's backup time has passed and no archive was taken since."""
    hour, minute = (int(part) for part in backup_time.split(":"))
    slot = datetime.combine(now.date(), time(hour, minute), tzinfo=now.tzinfo)
    return now >= slot and not any(when >= slot for when in taken)


async def run(store: Store, settings: TaskSettings) -> dict[str, Any]:
    now = store.clock()
    folder = settings.backup_dir
    if not is_due(now, backup_time=settings.backup_time, taken=[t for t, _ in archives(folder)]):
        return {"backup": "not due"}
    result = await create_backup(
        settings.database_url,
        media_root=settings.media_dir,
        out_dir=folder,
        bms_version=metadata.version("bms"),
    )
    await record_backup(store, at=store.clock())
    removed = prune(
        folder, keep_daily=settings.backup_keep_daily, keep_weekly=settings.backup_keep_weekly
    )
    return {"backup": str(result.path), "bytes": result.size_bytes, "pruned": len(removed)}
