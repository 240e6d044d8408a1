"""Schemathesis over every operation of the served /api/schema/: no 5xx, nothing off-schema.

Runs against a real `bms serve` on each backend, as an admin and as an operator, bounded
(MAX_EXAMPLES per operation) so the whole suite stays well under its time budget. The
number of cases each run generated is printed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import (
    BACKENDS,
    REDIS_URL,
    TEST_PASSWORD,
    create_postgres_database,
    drop_postgres_database,
)
from tests.e2e.processes import bms_env, run_bms, serving

pytestmark = pytest.mark.e2e

ST = str(Path(sys.executable).with_name("st"))
HOOKS = str(Path(__file__).with_name("fuzz_hooks.py"))
FUZZ_TIMEOUT_SECS = 600
CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_schema_conformance"
)
# Logging out revokes the run's own token family; tests/api/test_auth.py covers it.
EXCLUDED_PATHS = ("/api/auth/logout/",)
# Random cases (schemathesis' fuzzing phase) on every operation, per role. Its coverage
# phase (boundary values: huge integers, control characters, calendar edges) ran clean too,
# but takes minutes: run it with BMS_TEST_FUZZ_PHASES=coverage,fuzzing.
PHASES = os.environ.get("BMS_TEST_FUZZ_PHASES", "fuzzing")
MAX_EXAMPLES = {"admin": 5, "operator": 3}  # per operation; the admin reaches every rule
ROLES = ("admin", "operator")
# When the coverage phase runs, it skips methods no route has (405: tests/api/test_errors.py).
CONFIG = """
[phases.coverage]
unexpected-methods = []
generate-duplicate-query-parameters = false
"""


@pytest.fixture(params=BACKENDS)
async def database_env(request, tmp_path) -> AsyncIterator[dict[str, str]]:
    """The environment of a fresh, migrated database of the backend."""
    env = bms_env(BMS_DATA_DIR=str(tmp_path / "data"), SECRET_KEY="fuzz-" + uuid.uuid4().hex * 2)
    if request.param != "postgres":
        assert run_bms("migrate", env=env).returncode == 0
        yield env
        return
    url = await create_postgres_database()
    try:
        env.update(DATABASE_URL=url, REDIS_URL=REDIS_URL)
        assert run_bms("migrate", env=env).returncode == 0
        yield env
    finally:
        await drop_postgres_database(url)


def _token(base_url: str, username: str) -> tuple[str, int]:
    """(access token, profile id) of a user."""
    pair = httpx.post(
        base_url + "/api/auth/token/", json={"username": username, "password": TEST_PASSWORD}
    ).json()
    headers = {"Authorization": f"Bearer {pair['access']}"}
    me = httpx.get(base_url + "/api/auth/user/", headers=headers).json()
    return pair["access"], me["id"]


def _seed(base_url: str, token: str) -> None:
    """A few rows, so detail operations find something at low ids."""
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}) as api:
        location = api.post(
            "/api/locations/", json={"name": "Fuzz", "code": "FZ", "timezone": "Europe/London"}
        ).json()
        api.post("/api/facilities/", json={"name": "Studio", "kind": "studio",
                                           "location": location["id"]})  # fmt: skip
        kind = api.post("/api/incident-types/", json={"name": "Feed"}).json()
        api.post("/api/incident-tickets/", json={"title": "x", "incident_type": kind["id"]})


def _start_fuzz(
    base_url: str, token: str, role: str, own_ids: str, tmp_path: Path
) -> tuple[subprocess.Popen, Path]:
    """Start schemathesis as `role`; return the process and the file its report goes to."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    command = [
        ST, "--config-file", str(config), "run", base_url + "/api/schema/",
        "--header", f"Authorization: Bearer {token}",
        "--checks", CHECKS,
        "--max-examples", str(MAX_EXAMPLES[role]),
        "--phases", PHASES,
        "--workers", "1",  # hypothesis is not thread-safe on 3.11 (AST recursion check)
        "--seed", "9",
        "--no-shrink",
        "--suppress-health-check", "all",
        "--report-dir", str(tmp_path / "report"),
    ]  # fmt: skip
    for path in EXCLUDED_PATHS:
        command += ["--exclude-path", path]
    env = {**bms_env(), "SCHEMATHESIS_HOOKS": HOOKS, "BMS_FUZZ_OWN_IDS": own_ids,
           "NO_COLOR": "1", "COLUMNS": "120"}  # fmt: skip
    output = tmp_path / "output.txt"
    with output.open("w") as out:
        process = subprocess.Popen(  # its cache directory lands in tmp_path, not the checkout
            command, env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT
        )
    return process, output


def _cases(output: str) -> int:
    found = re.search(r"(\d+) generated", output)
    assert found is not None, output[-3000:]
    return int(found.group(1))


@pytest.mark.timeout(2 * FUZZ_TIMEOUT_SECS)
def test_the_fuzzer_finds_no_server_error_and_nothing_off_schema(
    database_env, tmp_path, capsys
) -> None:
    for role in ROLES:
        created = run_bms(
            "createuser", "--username", f"fuzz-{role}", "--role", role, "--password-stdin",
            env=database_env, input=TEST_PASSWORD + "\n",
        )  # fmt: skip
        assert created.returncode == 0, created.stderr
    with serving(env=database_env, log_dir=tmp_path) as (base_url, log):
        tokens = {role: _token(base_url, f"fuzz-{role}") for role in ROLES}
        _seed(base_url, tokens["admin"][0])
        own_ids = ",".join(str(profile_id) for _, profile_id in tokens.values())
        plain = httpx.get(base_url + "/ws/")  # no Upgrade: a status the schema lists
        assert plain.status_code == 426 and plain.headers["upgrade"] == "websocket"
        backend = "postgres" if "DATABASE_URL" in database_env else "sqlite"
        started = time.monotonic()
        # Both roles at once: on two cores the run takes about half the time.
        runs = {
            role: _start_fuzz(base_url, tokens[role][0], role, own_ids, tmp_path / role)
            for role in ROLES
        }
        try:
            for role, (process, output_file) in runs.items():
                status = process.wait(timeout=FUZZ_TIMEOUT_SECS)
                output = output_file.read_text()
                with capsys.disabled():
                    secs = time.monotonic() - started
                    cases = _cases(output)
                    print(f"\nfuzz {backend} as {role} ({PHASES}): {cases} cases, {secs:.0f} s")
                server_log = log.read_text()[-3000:]
                assert status == 0, output[-6000:] + "\n--- server log ---\n" + server_log
        finally:
            for process, _ in runs.values():
                if process.poll() is None:
                    process.kill()
                    process.wait()
