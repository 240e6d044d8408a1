"""The nightly backup job: due once a day after BACKUP_TIME, keeps N daily and M weekly
archives, and /metrics shows when the last good backup was written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from db.backup.record import last_backup
from db.backup.retention import archives, to_delete
from tasks.jobs import backup, job_named
from tests.backup.world import client_for, drop_database, new_database, running_app


def test_due_once_a_day_after_the_configured_time() -> None:
    now = datetime(2026, 12, 3, 3, 30, tzinfo=UTC)
    assert backup.is_due(now, backup_time="03:00", taken=[])
    assert not backup.is_due(now, backup_time="04:00", taken=[])
    assert not backup.is_due(now, backup_time="03:00", taken=[now - timedelta(minutes=10)])
    assert backup.is_due(now, backup_time="03:00", taken=[now - timedelta(hours=1)])


def test_retention_keeps_newest_per_day_and_per_week() -> None:
    start = datetime(2026, 11, 1, 3, tzinfo=UTC)  # a Sunday
    taken = [
        (start + timedelta(days=d, minutes=m), Path(f"{d}-{m}")) for d in range(30) for m in (0, 5)
    ]
    taken.sort(reverse=True)
    doomed = set(to_delete(taken, keep_daily=7, keep_weekly=4))
    kept = [p for _, p in taken if p not in doomed]
    daily = [Path(f"{d}-5") for d in range(23, 30)]
    assert set(daily) <= set(kept)  # the newest of each of the last 7 days
    assert len(kept) == 7 + 2  # plus the week ends (Sundays 15 and 22) not among them
    assert {Path("21-5"), Path("14-5")} <= set(kept)


async def test_job_backs_up_records_and_reports(tmp_path: Path) -> None:
    url = await new_database("sqlite", tmp_path)
    data = tmp_path / "data"
    try:
        async with running_app(url, data) as app:
            settings = app.state.settings.model_copy(update={"backup_time": "00:00"})
            job = job_named(settings.task_settings(), "backup")
            store = app.state.store
            result = await job.run(store, settings.task_settings())
            assert Path(result["backup"]).is_file()
            assert (await job.run(store, settings.task_settings())) == {"backup": "not due"}
            assert len(archives(data / "backups")) == 1
            recorded = await last_backup(store)
            assert recorded is not None
            async with client_for(app) as anonymous:
                text = (await anonymous.get("/metrics")).text
            line = next(
                row
                for row in text.splitlines()
                if row.startswith("bms_backup_last_success_timestamp_seconds ")
            )
            assert float(line.split()[1]) == recorded.timestamp()
    finally:
        await drop_database(url)
