"""Startup failures are one line naming the cause, exit status 1, no traceback (issue #9)."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import make_url

from tests.conftest import POSTGRES_URL
from tests.e2e.processes import bms_env, free_port, run_bms

pytestmark = pytest.mark.e2e


LOG_LINE = re.compile(r"\d{4}-\d\d-\d\dT")  # the log stream's lines (bms.logs)


def _one_line(result, line: str) -> None:
    """The command failed with exactly `line` on stderr, besides the log stream's lines."""
    assert result.returncode == 1, result.stderr
    said = [text for text in result.stderr.strip().splitlines() if not LOG_LINE.match(text)]
    assert said == [line], result.stderr
    assert "Traceback" not in result.stdout + result.stderr


@pytest.fixture
def closed_port() -> int:
    return free_port()  # nothing listens there


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.mark.parametrize("command", ["migrate", "serve"])
def test_postgres_refusing_connections_is_one_line(tmp_path, closed_port, command) -> None:
    url = f"postgresql://postgres@127.0.0.1:{closed_port}/bms"
    result = run_bms(command, env=bms_env(BMS_DATA_DIR=str(tmp_path), DATABASE_URL=url))
    _one_line(result, f"bms: cannot connect to PostgreSQL at 127.0.0.1:{closed_port} "
                      "(connection refused)")  # fmt: skip


@pytest.mark.parametrize("command", ["migrate", "serve"])
def test_a_missing_database_is_one_line(tmp_path, command) -> None:
    url = make_url(POSTGRES_URL).set(database="bms_no_such_db")
    address = f"{url.host}:{url.port or 5432}"
    env = bms_env(BMS_DATA_DIR=str(tmp_path), DATABASE_URL=url.render_as_string(False))
    result = run_bms(command, env=env)
    _one_line(result, f'bms: cannot connect to PostgreSQL at {address} '
                      '(database "bms_no_such_db" does not exist)')  # fmt: skip


def test_debug_shows_the_traceback(tmp_path, closed_port) -> None:
    url = f"postgresql://postgres@127.0.0.1:{closed_port}/bms"
    env = bms_env(BMS_DATA_DIR=str(tmp_path), DATABASE_URL=url)
    assert "Traceback" in run_bms("--debug", "migrate", env=env).stderr
    assert "Traceback" in run_bms("migrate", env={**env, "LOG_LEVEL": "debug"}).stderr


def test_redis_unreachable_for_the_worker_is_one_line(tmp_path, closed_port) -> None:
    env = bms_env(
        BMS_DATA_DIR=str(tmp_path),
        DATABASE_URL=POSTGRES_URL,
        REDIS_URL=f"redis://127.0.0.1:{closed_port}/0",
    )
    result = run_bms("worker", env=env)
    _one_line(result, f"bms: cannot connect to Redis at 127.0.0.1:{closed_port} "
                      "(connection refused)")  # fmt: skip


def test_a_busy_port_is_one_line_before_anything_starts(tmp_path, busy_port) -> None:
    env = bms_env(BMS_DATA_DIR=str(tmp_path / "fresh"))
    result = run_bms("serve", "--port", str(busy_port), env=env)
    _one_line(result, f"bms: cannot listen on 127.0.0.1:{busy_port} (address already in use)")
    assert "serving on" not in result.stdout
    assert not (tmp_path / "fresh" / "bms.sqlite3").exists()  # nothing was migrated


def test_a_bad_log_level_is_refused_with_the_other_settings(tmp_path) -> None:
    env = bms_env(BMS_DATA_DIR=str(tmp_path), LOG_LEVEL="LOUD")
    result = run_bms("serve", "--port", str(free_port()), env=env)
    assert result.returncode == 2
    assert "LOG_LEVEL: must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL" in result.stderr
    assert "serving on" not in result.stdout and "Traceback" not in result.stderr


def test_version_and_help_show_what_a_user_needs(tmp_path) -> None:
    env = bms_env(BMS_DATA_DIR=str(tmp_path))
    version = run_bms("--version", env=env)
    assert version.returncode == 0 and version.stdout.startswith("bms 0.")
    serve_help = run_bms("serve", "--help", env=env).stdout
    assert "(default: 127.0.0.1)" in serve_help and "(default: 8000)" in serve_help
