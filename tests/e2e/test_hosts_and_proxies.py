"""`bms serve` in development without ALLOWED_HOSTS or TRUSTED_PROXIES (issue #10 §5): only
local host names are served, and no client may set its address with X-Forwarded-For."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.e2e.processes import bms_env, serving

pytestmark = pytest.mark.e2e


def test_development_defaults_refuse_other_hosts_and_forwarded_addresses(tmp_path: Path) -> None:
    env = bms_env(BMS_ENV="development", BMS_DATA_DIR=str(tmp_path), LOG_LEVEL="warning",
                  LOGIN_FAILURES_PER_CLIENT="2", LOGIN_FAILURES_PER_USER="100")  # fmt: skip
    for key in ("ALLOWED_HOSTS", "TRUSTED_PROXIES", "FORWARDED_ALLOW_IPS"):
        env.pop(key, None)
    with serving(env=env, log_dir=tmp_path) as (base, _), httpx.Client(base_url=base) as http:
        assert http.get("/api/auth/user/", headers={"Host": "evil.example"}).status_code == 400
        assert http.get("/api/auth/user/", headers={"Host": "localhost"}).status_code == 401
        assert http.get("/healthz", headers={"Host": "node-7:8000"}).status_code == 200
        statuses = [
            http.post(
                "/api/auth/token/",
                json={"username": f"guess{n}", "password": "wrong-password"},
                headers={"X-Forwarded-For": f"203.0.113.{n}"},
            ).status_code
            for n in range(3)
        ]
        # Every attempt counted against 127.0.0.1: the forwarded addresses were ignored.
        assert statuses == [401, 401, 429]
