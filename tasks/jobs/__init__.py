"""Recurring jobs: each is `async def run(store, settings) -> dict` and safe to run twice."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from db.store import Store
from tasks.config import TaskSettings

JobFunc = Callable[[Store, TaskSettings], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Job:
    name: str
    interval_secs: int
    run: JobFunc


def all_jobs(settings: TaskSettings) -> list[Job]:
    """Every recurring job with its configured interval."""
    from tasks.jobs import backup, email_sweep, escalation, reminders, retention, series

    return [
        Job("materialize_series", settings.job_series_interval_secs, series.run),
        Job("escalate_incidents", settings.job_escalation_interval_secs, escalation.run),
        Job("shift_reminders", settings.job_reminders_interval_secs, reminders.run),
        Job("retention", settings.job_retention_interval_secs, retention.run),
        Job("email_sweep", settings.job_email_sweep_interval_secs, email_sweep.run),
        Job("backup", backup.CHECK_INTERVAL_SECS, backup.run),
    ]


def job_named(settings: TaskSettings, name: str) -> Job:
    for job in all_jobs(settings):
        if job.name == name:
            return job
    raise KeyError(name)
