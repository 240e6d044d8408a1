"""What the task layer needs to know, handed down by the composition root.

`tasks/` never imports `bms.settings` (imports point down only): the root builds a
`TaskSettings` with `bms.settings.Settings.task_settings()`, which copies every field
below from the field of the same name. A new setting a task needs: add it here with the
same name as in `bms/settings.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class TaskSettings:
    """Broker, retries, email delivery and recurring jobs (no defaults: those are in Settings)."""

    database_url: str  # the effective URL, never empty
    redis_url: str
    channel_namespace: str  # prefix of Redis keys and streams
    # Broker and retries.
    worker_concurrency: int
    task_stream_maxlen: int
    task_reclaim_idle_secs: float
    task_retry_base_secs: float
    task_retry_max_secs: float
    task_max_retries: int
    # Email delivery.
    smtp_host: str
    smtp_port: int
    smtp_username: str
    smtp_password: str
    smtp_use_tls: bool
    smtp_start_tls: bool
    smtp_timeout_secs: float
    email_from: str
    email_lease_secs: float
    email_retry_horizon_secs: float
    email_retry_base_secs: float
    email_retry_max_secs: float
    stale_queued_secs: float
    # Recurring jobs: their rules' parameters and how often each runs.
    escalation_after_secs: int
    series_horizon_days: int
    shift_reminder_lead_secs: int
    event_retention_days: int
    session_retention_days: int
    login_window_secs: int
    job_series_interval_secs: int
    job_escalation_interval_secs: int
    job_reminders_interval_secs: int
    job_retention_interval_secs: int
    job_email_sweep_interval_secs: int
    scheduler_poll_secs: float
    # Nightly backup (#13): where archives go, the media they include, when, how many kept.
    backup_dir: Path
    media_dir: Path
    backup_time: str  # HH:MM, UTC
    backup_keep_daily: int
    backup_keep_weekly: int
    scheduler_embedded: bool  # embedded mode: `bms serve` runs the recurring jobs
    fast_paths: bool  # FAST_PATHS: batched Redis commands (tasks/broker.py), compiled SQL
