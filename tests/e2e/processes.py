"""Start real `bms` processes on free ports and wait for them without fixed sleeps."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.conftest import RUN_NAMESPACE

BMS = str(Path(sys.executable).with_name("bms"))
# A deadline only for a server that never comes up: a healthy one returns at once. Generous,
# because `serve --demo` hashes every demo password first and a shared CI core can be slow.
STARTUP_TIMEOUT_SECS = 120.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bms_env(**values: str) -> dict[str, str]:
    """The current environment minus any BMS settings, plus `values` (and a Redis namespace
    of this test run, so its keys are removed with the run's)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "BMS_ENV", "BMS_DATA_DIR"}
    }
    env["REDIS_NAMESPACE"] = f"{RUN_NAMESPACE}:{uuid.uuid4().hex[:12]}"
    env.update(values)
    return env


def run_bms(
    *args: str, env: Mapping[str, str], input: str | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [BMS, *args], env=dict(env), input=input, capture_output=True, text=True, timeout=120
    )


def wait_until_healthy(base_url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited early:\n{log.read_text()}")
        try:
            if httpx.get(base_url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.05)  # polling a process that is starting: no event to await
    raise AssertionError(f"server did not become healthy:\n{log.read_text()}")


@contextmanager
def serving(*args: str, env: Mapping[str, str], log_dir: Path) -> Iterator[tuple[str, Path]]:
    """Run `bms serve ARGS` on a free port; yield (base URL, log file); stop it cleanly."""
    port = free_port()
    log = log_dir / f"serve-{port}.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [BMS, "serve", "--port", str(port), *args],
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(base_url, process, log)
        yield base_url, log
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
