"""Where the time of the last good backup is kept: a `job_runs` row every process can read.

/metrics reports it as bms_backup_last_success_timestamp_seconds, so an alert fires when
backups stop, whichever process (or machine) made them.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from db.store import Store
from db.tables import job_runs

RECORD_NAME = "backup:last_archive"


async def record_backup(store: Store, *, at: datetime) -> None:
    async with store.connection() as conn, conn.transaction():
        found = await conn.fetch_val(sa.select(job_runs.c.job).where(job_runs.c.job == RECORD_NAME))
        if found is None:
            await conn.execute(
                job_runs.insert().values(job=RECORD_NAME, last_run_at=at, last_success_at=at)
            )
        else:
            await conn.execute(
                job_runs.update()
                .where(job_runs.c.job == RECORD_NAME)
                .values(last_run_at=at, last_success_at=at)
            )


async def last_backup(store: Store) -> datetime | None:
    async with store.connection() as conn:
        value = await conn.fetch_val(
            sa.select(job_runs.c.last_success_at).where(job_runs.c.job == RECORD_NAME)
        )
    return value if isinstance(value, datetime) else None
