"""BMS_ENV: production refuses an unsafe configuration (one line per problem), staging
warns, and the shipped env/*.env.example files pass their own environment's check."""

from __future__ import annotations

from pathlib import Path

import pytest

from bms.environments import check_environment, unsafe_settings
from bms.settings import Settings, load_settings
from tests.e2e.processes import bms_env, run_bms

ROOT = Path(__file__).resolve().parents[1]
SAFE = {
    "bms_env": "production",
    "database_url": "postgresql://bms:pw@db/bms",
    "redis_url": "redis://redis:6379/0",
    "secret_key": "s" * 40,
    "allowed_hosts": "bms.example.com",
    "cookie_secure": True,
}


def test_a_safe_production_configuration_has_no_problems() -> None:
    assert unsafe_settings(Settings(**SAFE)) == []


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"log_level": "debug"}, "LOG_LEVEL=DEBUG"),
        ({"allowed_hosts": ""}, "ALLOWED_HOSTS is empty"),
        ({"cookie_secure": False}, "COOKIE_SECURE=false"),
        ({"redis_url": ""}, "REDIS_URL is empty"),
        ({"allowed_origins": "http://ops.example.com"}, "ALLOWED_ORIGINS has plain-HTTP origin"),
    ],
)
def test_each_unsafe_setting_is_one_line_naming_it(override: dict, named: str) -> None:
    problems = unsafe_settings(Settings(**{**SAFE, **override}))
    assert len(problems) == 1 and problems[0].startswith(named.split(" ")[0])
    assert named in problems[0] and "\n" not in problems[0]


def test_staging_warns_where_production_refuses() -> None:
    unsafe = {**SAFE, "log_level": "DEBUG", "cookie_secure": False}
    assert check_environment(Settings(**unsafe)) == (unsafe_settings(Settings(**unsafe)), [])
    errors, warnings = check_environment(Settings(**{**unsafe, "bms_env": "staging"}))
    assert errors == [] and len(warnings) == 2
    assert check_environment(Settings(**{**unsafe, "bms_env": "development"})) == ([], [])


def _env_example(name: str) -> dict[str, str]:
    values = {}
    for line in (ROOT / "env" / f"{name}.env.example").read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.lstrip().startswith("#"):
            values[key.strip()] = value.strip()
    return values


@pytest.mark.parametrize("name", ["development", "staging", "production"])
def test_env_examples_pass_their_environment_check(
    name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for key in [*Settings.model_fields, "BMS_DATA_DIR"]:
        monkeypatch.delenv(key.upper(), raising=False)
    monkeypatch.setenv("BMS_DATA_DIR", str(tmp_path))
    for key, value in _env_example(name).items():
        monkeypatch.setenv(key, value.replace("CHANGE_ME", "filled-in-by-the-operator-" * 2))
    settings = load_settings()
    assert settings.bms_env == name
    assert check_environment(settings) == ([], [])


@pytest.mark.e2e
def test_production_serve_refuses_unsafe_settings_one_line_each(tmp_path: Path) -> None:
    env = bms_env(
        BMS_ENV="production", BMS_DATA_DIR=str(tmp_path), DATABASE_URL=SAFE["database_url"],
        SECRET_KEY=SAFE["secret_key"], LOG_LEVEL="debug", COOKIE_SECURE="false",
    )  # fmt: skip
    for key in ("ALLOWED_HOSTS", "REDIS_URL", "TRUSTED_PROXIES", "ALLOWED_ORIGINS"):
        env.pop(key, None)
    refused = run_bms("serve", "--port", "1", env=env)
    assert refused.returncode == 2
    lines = refused.stderr.strip().splitlines()
    assert lines[0] == "bms: refusing to start with an unsafe production configuration:"
    assert [line.split()[0] for line in lines[1:]] == [
        "LOG_LEVEL=DEBUG:", "ALLOWED_HOSTS", "COOKIE_SECURE=false:", "REDIS_URL",
    ]  # fmt: skip
    assert "Traceback" not in refused.stderr
