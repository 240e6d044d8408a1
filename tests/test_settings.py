"""Settings: typed, validated at start, readable errors."""

from __future__ import annotations

import pytest

from bms.settings import SettingsError, load_settings


def test_defaults_are_embedded_sqlite(tmp_path) -> None:
    settings = load_settings(data_dir=tmp_path, database_url="", redis_url="")
    assert settings.embedded
    assert settings.effective_database_url == f"sqlite+aiosqlite:///{tmp_path}/bms.sqlite3"
    assert not settings.redis_url  # memory:// pub/sub, in-process tasks


def test_task_settings_carry_the_resolved_values(tmp_path) -> None:
    """tasks/ gets the effective database URL and namespace, and each field by its name."""
    settings = load_settings(data_dir=tmp_path, database_url="", smtp_port=2525)
    tasks = settings.task_settings()
    assert tasks.database_url == settings.effective_database_url
    assert tasks.channel_namespace == settings.channel_namespace == "bms:bms"
    assert (tasks.smtp_port, tasks.email_lease_secs) == (2525, settings.email_lease_secs)


def test_realtime_settings_carry_the_resolved_values(tmp_path) -> None:
    settings = load_settings(
        data_dir=tmp_path, redis_namespace="ns", allowed_origins="https://a.example"
    )
    realtime = settings.realtime_settings()
    assert (realtime.channel_namespace, realtime.allowed_origins) == ("ns", ("https://a.example",))
    assert realtime.ws_queue_max_events == settings.ws_queue_max_events


def test_secret_key_is_generated_once_and_kept(tmp_path) -> None:
    first = load_settings(data_dir=tmp_path, secret_key="").resolved_secret_key()
    second = load_settings(data_dir=tmp_path, secret_key="").resolved_secret_key()
    assert first == second and len(first) >= 32
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"bms_env": "production", "database_url": "postgresql://x/y"}, "SECRET_KEY is required"),
        ({"database_url": "mysql://x/y"}, "DATABASE_URL"),
        ({"redis_url": "http://x"}, "REDIS_URL"),
        ({"allowed_origins": "dashboard.example"}, "ALLOWED_ORIGINS"),
        ({"secret_key": "short"}, "at least 32"),
        ({"secret_key": "CHANGE_ME_to_a_long_random_string_xx"}, "placeholder"),
        ({"smtp_port": "not-a-port"}, "SMTP_PORT"),
        ({"database_read_url": "postgresql://r/y"}, "DATABASE_READ_URL needs PostgreSQL"),
        (
            {"database_url": "postgresql://x/y", "database_read_url": "sqlite:///r.db"},
            "DATABASE_READ_URL needs PostgreSQL",
        ),
        ({"database_read_url": "mysql://r/y"}, "DATABASE_READ_URL"),
        ({"database_read_after_write_secs": "0"}, "DATABASE_READ_AFTER_WRITE_SECS"),
    ],
)
def test_bad_values_give_a_clear_message(overrides, message, tmp_path) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(data_dir=tmp_path, **overrides)
    assert message in str(caught.value)


def test_origins_are_split_and_normalised(tmp_path) -> None:
    settings = load_settings(
        data_dir=tmp_path, allowed_origins="https://a.example/, http://b.example:3000"
    )
    assert settings.allowed_origins == ["https://a.example", "http://b.example:3000"]


def test_environment_is_read(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/3")
    monkeypatch.setenv("BMS_DATA_DIR", str(tmp_path))
    settings = load_settings()
    assert settings.redis_url == "redis://127.0.0.1:6379/3"
    assert settings.data_dir == tmp_path


def test_a_read_replica_url_is_spelled_like_the_database_url(tmp_path) -> None:
    settings = load_settings(
        data_dir=tmp_path, database_url="postgres://x/y", database_read_url="postgres://r/y"
    )
    assert settings.database_read_url == "postgresql://r/y"
    assert load_settings(data_dir=tmp_path).database_read_url == ""  # unset: one pool
