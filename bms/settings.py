"""Typed settings read from the environment, validated once at start."""

from __future__ import annotations

import secrets
from dataclasses import fields
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url

from realtime.config import RealtimeSettings
from tasks.config import TaskSettings

DEFAULT_DATA_DIR = Path.home() / ".local" / "share" / "bms"
SECRET_KEY_MIN_CHARS = 32


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class SettingsError(RuntimeError):
    """Raised with a readable message when the environment holds a bad value."""


class Settings(BaseSettings):
    """Everything BMS reads from its environment (see .env.example)."""

    model_config = SettingsConfigDict(
        env_file=None, extra="ignore", frozen=False, populate_by_name=True
    )

    bms_env: Literal["development", "staging", "production", "test"] = "development"
    data_dir: Path = Field(default=DEFAULT_DATA_DIR, alias="BMS_DATA_DIR")
    database_url: str = ""
    # PostgreSQL connections per `bms serve` process. Few busy connections beat many idle
    # ones: on 2 cores, 8 instead of 20 more than doubled REST throughput (bench/rest.py).
    database_pool_max: int = Field(default=8, gt=0)
    # A PostgreSQL streaming replica for list and detail reads (docs/scaling.md); empty:
    # every read from DATABASE_URL. After a client's write, its reads go to the primary until
    # the replica has replayed it, for at most DATABASE_READ_AFTER_WRITE_SECS (the cookie).
    database_read_url: str = ""
    database_read_after_write_secs: int = Field(default=10, gt=0)
    redis_url: str = ""
    # How long a process may reuse a credential it found live without asking the database
    # (api/auth/credential_cache.py). Revocations reach every process at once through
    # Redis; this bounds only what no broadcast carries. 0: ask the database every request.
    auth_cache_secs: float = Field(default=10, ge=0, le=300)
    secret_key: str = ""
    allowed_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    cookie_secure: bool = False
    session_ttl_secs: int = Field(default=14 * 24 * 3600, gt=0)
    access_token_ttl_secs: int = Field(default=15 * 60, gt=0)
    refresh_token_ttl_secs: int = Field(default=7 * 24 * 3600, gt=0)
    event_retention_days: int = Field(default=7, gt=0)
    ws_queue_max_events: int = Field(default=1000, gt=0)
    redis_namespace: str = ""
    smtp_host: str = ""
    smtp_port: int = Field(default=587, gt=0, lt=65536)
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_use_tls: bool = False
    smtp_start_tls: bool = True
    smtp_timeout_secs: float = Field(default=10.0, gt=0)
    email_from: str = "bms@localhost"
    login_failures_per_user: int = Field(default=5, gt=0)
    login_failures_per_client: int = Field(default=50, gt=0)
    login_window_secs: int = Field(default=15 * 60, gt=0)
    log_level: str = "INFO"
    # Running in production (#14): one log stream for every process (bms/logs.py).
    # LOG_FORMAT: console (readable; default in development and test) or json (default in
    # staging and production, one object per line for a log shipper).
    log_format: Literal["console", "json"] | None = None
    # Error tracking (#14, bms/errortracking.py): reports go to a Sentry-compatible service
    # when SENTRY_DSN is set; environment defaults to BMS_ENV; traces off unless > 0.
    sentry_dsn: str = ""
    sentry_environment: str = ""
    sentry_traces_sample_rate: float = Field(default=0.0, ge=0, le=1)
    # Hosts and proxies (#10 owns them; #14's production check and TLS proxy need them).
    # ALLOWED_HOSTS: Host header values served (400 otherwise); empty: any host
    # (refused in production). TRUSTED_PROXIES: addresses or networks whose
    # X-Forwarded-For/-Proto set the client address and scheme (uvicorn's forwarded_allow_ips).
    allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Empty (default): no one, not even a local client, may set the client address, which
    # the per-address login limit counts (#10).
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Background work (tasks/): retries, outbox, recurring jobs, scheduler lease.
    worker_concurrency: int = Field(default=50, gt=0)
    task_stream_maxlen: int = Field(default=100_000, gt=0)
    task_reclaim_idle_secs: float = Field(default=60.0, gt=0)
    task_retry_base_secs: float = Field(default=2.0, gt=0)
    task_retry_max_secs: float = Field(default=300.0, gt=0)
    task_max_retries: int = Field(default=5, ge=0)
    # A sending worker's claim on an email, renewed while it sends (#11): a dead worker's
    # email is retried this long after it died (plus the sweep's interval).
    email_lease_secs: float = Field(default=15.0, gt=0)
    # Email retries (#11): capped exponential backoff with full jitter until the horizon
    # (counted from when the email was queued) is spent or the server answers 5xx.
    email_retry_horizon_secs: float = Field(default=86400.0, gt=0)
    email_retry_base_secs: float = Field(default=30.0, gt=0)
    email_retry_max_secs: float = Field(default=1800.0, gt=0)
    # The sweep re-enqueues an email left queued (and due) this long: its enqueue was lost.
    stale_queued_secs: float = Field(default=60.0, gt=0)
    escalation_after_secs: int = Field(default=300, gt=0)
    series_horizon_days: int = Field(default=28, gt=0, le=366)
    shift_reminder_lead_secs: int = Field(default=3600, gt=0)
    session_retention_days: int = Field(default=1, ge=0)
    job_series_interval_secs: int = Field(default=3600, gt=0)
    job_escalation_interval_secs: int = Field(default=30, gt=0)
    job_reminders_interval_secs: int = Field(default=60, gt=0)
    job_retention_interval_secs: int = Field(default=3600, gt=0)
    job_email_sweep_interval_secs: int = Field(default=15, gt=0)
    scheduler_poll_secs: float = Field(default=1.0, gt=0, le=60)
    # Embedded mode (no REDIS_URL): `bms serve` runs the recurring jobs itself.
    scheduler_embedded: bool = True
    # Backups (#13): `bms backup` and the nightly job write here (default: <data dir>/backups).
    backup_dir: Path | None = None
    backup_time: str = Field(default="03:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")  # UTC
    backup_keep_daily: int = Field(default=7, ge=1)
    backup_keep_weekly: int = Field(default=4, ge=0)
    # #16: the fast paths that rely on other libraries' private APIs (docs/fast-paths.md);
    # false runs the plain public-API path everywhere (same behaviour, more CPU).
    fast_paths: bool = True

    @field_validator("allowed_hosts", "trusted_proxies", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [o.strip().rstrip("/") for o in value.split(",") if o.strip()]
        return value

    @field_validator("allowed_origins")
    @classmethod
    def _check_origins(cls, origins: list[str]) -> list[str]:
        for origin in origins:
            if not origin.startswith(("http://", "https://")):
                raise ValueError(f"{origin!r} is not an origin like https://host[:port]")
        return origins

    @field_validator("database_url", "database_read_url")
    @classmethod
    def _check_database_url(cls, url: str) -> str:
        if not url:
            return url
        if url.startswith("postgres://"):
            url = "postgresql://" + url.removeprefix("postgres://")
        try:
            parsed = make_url(url)
        except Exception as exc:
            raise ValueError(f"not a database URL: {exc}") from None
        if parsed.get_backend_name() not in ("postgresql", "sqlite"):
            raise ValueError("only postgresql:// and sqlite:// URLs are supported")
        return url

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, level: str) -> str:
        # Checked here, with the other settings, before anything starts (#9).
        if level.upper() not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)} (any case)")
        return level.upper()

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, url: str) -> str:
        if url and not url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return url

    @model_validator(mode="after")
    def _production_rules(self) -> Settings:
        if self.bms_env == "production":
            if not self.secret_key:
                raise ValueError("SECRET_KEY is required when BMS_ENV=production")
            if not self.database_url:
                raise ValueError("DATABASE_URL is required when BMS_ENV=production")
        if self.database_read_url and not (
            self.database_url.startswith("postgresql")
            and self.database_read_url.startswith("postgresql")
        ):
            raise ValueError("DATABASE_READ_URL needs PostgreSQL in it and in DATABASE_URL")
        if self.email_lease_secs <= self.smtp_timeout_secs:
            raise ValueError("EMAIL_LEASE_SECS must be longer than SMTP_TIMEOUT_SECS")
        if self.task_retry_max_secs < self.task_retry_base_secs:
            raise ValueError("TASK_RETRY_MAX_SECS must be at least TASK_RETRY_BASE_SECS")
        if self.email_retry_max_secs < self.email_retry_base_secs:
            raise ValueError("EMAIL_RETRY_MAX_SECS must be at least EMAIL_RETRY_BASE_SECS")
        if self.secret_key.upper().startswith("CHANGE_ME"):
            raise ValueError("SECRET_KEY is still the placeholder from the example file")
        if self.secret_key and len(self.secret_key) < SECRET_KEY_MIN_CHARS:
            raise ValueError(f"SECRET_KEY must be at least {SECRET_KEY_MIN_CHARS} characters")
        return self

    @property
    def embedded(self) -> bool:
        """True when running without an external database (SQLite default)."""
        return not self.database_url

    @property
    def effective_log_format(self) -> Literal["console", "json"]:
        """LOG_FORMAT, else json where logs are shipped (staging, production)."""
        if self.log_format:
            return self.log_format
        return "json" if self.bms_env in ("staging", "production") else "console"

    @cached_property
    def effective_database_url(self) -> str:
        """The configured database URL, or the SQLite file under the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'bms.sqlite3').resolve()}"

    @cached_property
    def channel_namespace(self) -> str:
        """Prefix for Redis channels and keys: pub/sub ignores Redis database numbers."""
        if self.redis_namespace:
            return self.redis_namespace
        name = make_url(self.effective_database_url).database or "bms"
        return "bms:" + Path(name).stem

    def resolved_secret_key(self) -> str:
        """Return SECRET_KEY, generating and keeping one under the data dir in embedded mode."""
        if self.secret_key:
            return self.secret_key
        key_file = self.data_dir / "secret_key"
        if key_file.exists():
            return key_file.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        key_file.touch(mode=0o600)
        key_file.write_text(key)
        return key

    # The lower layers' own config objects (#16): they never import this module.
    def _copy_into(self, config: type[Any], **derived: Any) -> dict[str, Any]:
        """Fields of the dataclass `config` from this object's fields of the same names."""
        return {
            f.name: derived[f.name] if f.name in derived else getattr(self, f.name)
            for f in fields(config)
        }

    def realtime_settings(self) -> RealtimeSettings:
        """What `realtime/` reads: pub/sub backend, channel names, socket limits."""
        values = self._copy_into(
            RealtimeSettings,
            channel_namespace=self.channel_namespace,
            allowed_origins=tuple(self.allowed_origins),
        )
        return RealtimeSettings(**values)

    def task_settings(self) -> TaskSettings:
        """What `tasks/` reads: broker, retries, email delivery, recurring jobs."""
        values = self._copy_into(
            TaskSettings,
            database_url=self.effective_database_url,
            channel_namespace=self.channel_namespace,
            backup_dir=self.backup_dir or self.data_dir / "backups",
            media_dir=self.data_dir / "media",
        )
        return TaskSettings(**values)


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment; raise SettingsError with a readable message."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]  # validated by pydantic
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "settings"
            lines.append(f"  {field.upper()}: {err['msg'].removeprefix('Value error, ')}")
        raise SettingsError("invalid configuration:\n" + "\n".join(lines)) from None
