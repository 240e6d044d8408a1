"""SENTRY_DSN: a real `bms serve` reports an unhandled error to a local envelope endpoint,
tagged with the request id and user id, without secrets or personal fields."""

from __future__ import annotations

import gzip
import json
import threading
import uuid
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from bms.errortracking import scrub_event
from tests.conftest import _asyncpg_dsn, create_postgres_database, drop_postgres_database
from tests.e2e.processes import bms_env, run_bms, serving

PASSWORD = "a-long-enough-password"
# A fresh server's first requests on a loaded machine (load 8 on 2 cores) took over
# httpx's 5 s default.
SLOW_MACHINE_SECS = 30


class Receiver(ThreadingHTTPServer):
    """Collects the events of the envelopes posted to it (Sentry's ingestion endpoint)."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.events: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self.arrived = threading.Event()


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        encoding = self.headers.get("Content-Encoding", "")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        elif encoding == "br":
            import brotli

            body = brotli.decompress(body)
        text = body.decode()
        lines = text.split("\n")
        for header, payload in zip(lines[1::2], lines[2::2], strict=False):
            if json.loads(header).get("type") == "event":
                self.server.events.append(json.loads(payload))
        self.server.raw.append(text)
        self.server.arrived.set()
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def receiving() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.e2e
async def test_unhandled_error_is_reported_with_ids_and_without_secrets(tmp_path: Path) -> None:
    url = await create_postgres_database()
    request_id = f"req-{uuid.uuid4().hex[:8]}"
    try:
        with receiving() as receiver:
            dsn = f"http://publickey@127.0.0.1:{receiver.server_address[1]}/42"
            env = bms_env(
                DATABASE_URL=url, SECRET_KEY="e2e-" + uuid.uuid4().hex * 2,
                BMS_DATA_DIR=str(tmp_path), SENTRY_DSN=dsn, SENTRY_ENVIRONMENT="e2e",
            )  # fmt: skip
            assert run_bms("migrate", env=env).returncode == 0
            created = run_bms(
                "createuser", "--username", "alice", "--email", "alice@example.com",
                "--password-stdin", env=env, input=PASSWORD + "\n",
            )  # fmt: skip
            assert created.returncode == 0, created.stderr
            with serving(env=env, log_dir=tmp_path) as (base_url, log):
                token = httpx.post(
                    base_url + "/api/auth/token/",
                    json={"username": "alice", "password": PASSWORD},
                    timeout=SLOW_MACHINE_SECS,
                ).json()["access"]
                user_id = httpx.get(
                    base_url + "/api/auth/user/",
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=SLOW_MACHINE_SECS,
                ).json()["id"]
                # A real failure: the schema drifted under a running server.
                conn = await asyncpg.connect(_asyncpg_dsn(url))
                try:
                    await conn.execute("ALTER TABLE locations RENAME TO locations_moved")
                finally:
                    await conn.close()
                failed = httpx.get(
                    base_url + "/api/locations/?token=LeakedQueryToken",
                    headers={
                        "Authorization": f"Bearer {token}",
                        "X-Request-ID": request_id,
                        "Cookie": "sessionid=LeakedSessionCookie",
                    },
                    timeout=SLOW_MACHINE_SECS,
                )
                assert failed.status_code == 500
                assert receiver.arrived.wait(20), log.read_text()[-3000:]
    finally:
        await drop_postgres_database(url)
    event = next(e for e in receiver.events if e.get("exception"))
    assert event["tags"]["request_id"] == request_id
    assert event["tags"]["role"] == "serve" and event["tags"]["path"] == "/api/locations/"
    assert event["user"] == {"id": str(user_id)}
    assert event["environment"] == "e2e"
    assert any("locations" in str(v.get("value")) for v in event["exception"]["values"])
    everything = "\n".join(receiver.raw)
    for secret in ("LeakedQueryToken", "LeakedSessionCookie", token, "alice@example.com",
                   PASSWORD, "Authorization"):  # fmt: skip
        assert secret not in everything


def test_scrubbing_keeps_the_id_and_drops_the_rest() -> None:
    event = {
        "request": {"headers": {"Authorization": "Bearer x"}, "cookies": "sessionid=x"},
        "extra": {"password": "x"},
        "user": {"id": "7", "email": "bob@example.com", "ip_address": "10.0.0.1"},
        "exception": {"values": [{"value": "no row for bob@example.com at /ws/?token=abc"}]},
    }
    scrubbed = scrub_event(event, {})
    assert "request" not in scrubbed and "extra" not in scrubbed
    assert scrubbed["user"] == {}
    assert scrubbed["exception"]["values"][0]["value"] == "no row for [email] at /ws/?token=***"
