"""The `bms` command over real processes: serve --demo, migrate, createuser."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest

from tests.conftest import REDIS_URL, create_postgres_database, drop_postgres_database
from tests.e2e.processes import bms_env, free_port, run_bms, serving

pytestmark = pytest.mark.e2e

HEALTH_CHECKS = 20


def _healthz_count(metrics: str) -> float:
    sample = re.search(
        r'^bms_http_requests_total\{[^}]*route="/healthz"[^}]*\} (\S+)$', metrics, re.MULTILINE
    )
    assert sample is not None, metrics
    return float(sample.group(1))


def _browser_login(base_url: str, username: str, password: str) -> httpx.Response:
    with httpx.Client(base_url=base_url) as browser:
        token = browser.get("/api/csrf/").json()["csrfToken"]
        response = browser.post(
            "/api/auth/login/",
            json={"username": username, "password": password},
            headers={"X-CSRFToken": token},
        )
        if response.status_code == 200:
            assert browser.get("/api/facilities/").json()["count"] == 15
        return response


def test_serve_demo_on_a_bare_machine_logs_in_through_the_browser_flow(tmp_path) -> None:
    env = bms_env(BMS_DATA_DIR=str(tmp_path / "data"))
    with serving("--demo", env=env, log_dir=tmp_path) as (base_url, log):
        output = log.read_text()
        password = re.search(r"demo password for every demo user: (\S+)", output).group(1)
        response = _browser_login(base_url, "admin", password)
        assert response.status_code == 200, response.text
        assert response.json()["role"] == "admin"
        assert _browser_login(base_url, "admin", "wrong-password").status_code == 400


async def test_postgres_serve_refuses_unmigrated_database_then_runs(tmp_path) -> None:
    url = await create_postgres_database()
    try:
        env = bms_env(
            DATABASE_URL=url,
            REDIS_URL=REDIS_URL,
            SECRET_KEY="e2e-" + uuid.uuid4().hex * 2,
            BMS_DATA_DIR=str(tmp_path),
        )
        refused = run_bms("serve", "--port", str(free_port()), env=env)
        assert refused.returncode == 1
        assert "bms migrate" in refused.stderr
        assert run_bms("migrate", env=env).returncode == 0
        created = run_bms(
            "createuser", "--username", "boss", "--role", "admin", "--password-stdin",
            env=env, input="a-long-enough-password\n",
        )  # fmt: skip
        assert created.returncode == 0, created.stderr
        weak = run_bms(
            "createuser", "--username", "weak", "--password-stdin", env=env, input="123\n"
        )
        assert weak.returncode == 1 and "password" in weak.stderr
        generated = run_bms("createuser", "--username", "gen", "--generate-password", env=env)
        generated_password = re.search(r"password: (\S+)", generated.stdout).group(1)
        with serving("--workers", "2", env=env, log_dir=tmp_path) as (base_url, _):
            ready = httpx.get(base_url + "/readyz")
            assert ready.status_code == 200 and ready.json()["redis"] == "ok"
            token = httpx.post(
                base_url + "/api/auth/token/",
                json={"username": "gen", "password": generated_password},
            )
            assert token.status_code == 200
            before = _healthz_count(httpx.get(base_url + "/metrics").text)  # startup polls
            for _ in range(HEALTH_CHECKS):  # a new connection each: they land on both workers
                assert httpx.get(base_url + "/healthz").status_code == 200
            for _ in range(4):  # whichever worker answers, it reports the sum of both
                after = _healthz_count(httpx.get(base_url + "/metrics").text)
                assert after == before + HEALTH_CHECKS
    finally:
        await drop_postgres_database(url)


def test_bad_configuration_is_reported_not_a_traceback(tmp_path) -> None:
    env = bms_env(BMS_DATA_DIR=str(tmp_path), DATABASE_URL="mysql://nope/x")
    result = run_bms("migrate", env=env)
    assert result.returncode == 2
    assert "DATABASE_URL" in result.stderr and "Traceback" not in result.stderr
