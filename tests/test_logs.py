"""One log stream (bms/logs.py): real `bms serve` access lines, redaction, formats."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import httpx
import pytest

from bms.logs import redact
from bms.settings import Settings
from tests.e2e.processes import bms_env, run_bms, serving


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("/ws/?a=1&token=eyJ.x.y&b=2", "/ws/?a=1&token=***&b=2"),
        ("/api/x/?key=bms_abc123", "/api/x/?key=***"),
        ('"WebSocket /ws/?access_token=s3cret"', '"WebSocket /ws/?access_token=***"'),
        ("/api/calendar/Zk9-secret_Token.ics", "/api/calendar/***.ics"),
        ("/api/calendar-feeds/?page=2", "/api/calendar-feeds/?page=2"),
        ("/api/locations/?search=key", "/api/locations/?search=key"),
    ],
)
def test_secrets_in_urls_are_redacted(raw: str, clean: str) -> None:
    assert redact(raw) == clean


@pytest.mark.parametrize(
    ("env", "given", "expected"),
    [("development", None, "console"), ("test", None, "console"), ("staging", None, "json"),
     ("production", None, "json"), ("production", "console", "console")],
)  # fmt: skip
def test_log_format_follows_the_environment(env: str, given: str | None, expected: str) -> None:
    settings = Settings(
        bms_env=env, log_format=given, database_url="postgresql://h/db", secret_key="k" * 40
    )
    assert settings.effective_log_format == expected


@pytest.mark.e2e
def test_serve_writes_one_json_stream_with_access_lines_and_no_secrets(tmp_path) -> None:
    env = bms_env(BMS_DATA_DIR=str(tmp_path / "data"), LOG_FORMAT="json")
    created = run_bms(
        "createuser", "--username", "logger", "--role", "manager", "--password-stdin",
        env=env, input="a-long-enough-password\n",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    with (
        serving(env=env, log_dir=tmp_path) as (base_url, log),
        httpx.Client(base_url=base_url) as http,
    ):
        token = http.post(
            "/api/auth/token/",
            json={"username": "logger", "password": "a-long-enough-password"},
        ).json()["access"]
        me = http.get("/api/auth/user/", headers={"Authorization": f"Bearer {token}"})
        user_id = me.json()["id"]
        http.get("/api/locations/", headers={"Authorization": f"Bearer {token}",
                                                 "X-Request-ID": "trace-42"})  # fmt: skip
        http.get("/api/calendar/TopSecretFeedToken.ics")
        http.get("/healthz?token=LeakedToken&key=LeakedKey")
    text = log.read_text()
    raw = [line for line in text.splitlines() if line.strip()]
    assert all(line.startswith("{") for line in raw), [x for x in raw if not x.startswith("{")]
    lines = [json.loads(line) for line in raw]  # all JSON
    for line in lines:
        assert line["role"] == "serve" and line["level"] and line["timestamp"].endswith("Z")
    access = [line for line in lines if line["event"] == "request"]
    traced = next(line for line in access if line.get("request_id") == "trace-42")
    assert traced["method"] == "GET" and traced["path"] == "/api/locations/"
    assert traced["status"] == 200 and traced["user_id"] == user_id
    assert any(line["path"] == "/api/calendar/***.ics" for line in access)
    assert any(line["path"] == "/healthz?token=***&key=***" for line in access)
    assert all(re.fullmatch(r"[A-Za-z0-9._:-]+", line["request_id"]) for line in access)
    for secret in ("TopSecretFeedToken", "LeakedToken", "LeakedKey", token):
        assert secret not in text
    assert any("serving on" in line["event"] for line in lines)  # bms's own lines, same stream
    assert any(line.get("logger", "").startswith("uvicorn") for line in lines)  # and uvicorn's


_EXCEPTIONS_SCRIPT = """
import io, logging, sys, structlog
from bms.logs import configure_logging
out = io.StringIO()
configure_logging(role="worker", fmt=sys.argv[1], stream=out)
try:
    1 / 0
except ZeroDivisionError:
    structlog.get_logger("bms.tasks").exception("job failed", job="backup")
    logging.getLogger("taskiq.receiver").exception("Exception found while executing function")
import warnings
warnings.warn("a library's warning")
sys.stdout.write(out.getvalue())
"""


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_exceptions_and_warnings_stay_inside_the_stream(fmt: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _EXCEPTIONS_SCRIPT, fmt], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # the warning too went through the configured stream
    if fmt == "json":
        lines = [json.loads(line) for line in done.stdout.splitlines()]  # one object each
        assert [line["event"] for line in lines][:2] == [
            "job failed", "Exception found while executing function",
        ]  # fmt: skip
        assert all("ZeroDivisionError" in line["exception"] for line in lines[:2])
        assert "a library's warning" in lines[2]["event"]
    else:  # each traceback printed once, below its line
        assert done.stdout.count("Traceback (most recent call last)") == 2
