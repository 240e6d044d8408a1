"""Start `bms worker` / `bms scheduler` (the real CLI) as child processes for e2e tests."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from bms.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def process_env(settings: Settings, **overrides: Any) -> dict[str, str]:
    """The environment that reproduces `settings` in a child process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMTP_", "JOB_", "REDIS_"))}
    env.update(
        BMS_ENV="test",
        DATABASE_URL=settings.database_url,
        REDIS_URL=settings.redis_url,
        REDIS_NAMESPACE=settings.channel_namespace,
        SECRET_KEY=settings.secret_key,
        BMS_DATA_DIR=str(settings.data_dir),
        SMTP_HOST=settings.smtp_host,
        SMTP_PORT=str(settings.smtp_port),
        SMTP_START_TLS=str(settings.smtp_start_tls).lower(),
        SMTP_TIMEOUT_SECS=str(settings.smtp_timeout_secs),
        EMAIL_LEASE_SECS=str(settings.email_lease_secs),
        EMAIL_RETRY_BASE_SECS=str(settings.email_retry_base_secs),
        EMAIL_RETRY_MAX_SECS=str(settings.email_retry_max_secs),
        EMAIL_RETRY_HORIZON_SECS=str(settings.email_retry_horizon_secs),
        TASK_RECLAIM_IDLE_SECS=str(settings.task_reclaim_idle_secs),
        TASK_RETRY_BASE_SECS=str(settings.task_retry_base_secs),
        TASK_RETRY_MAX_SECS=str(settings.task_retry_max_secs),
        PYTHONUNBUFFERED="1",
    )
    env.update({k.upper(): str(v) for k, v in overrides.items()})
    return env


class Child:
    """A child process whose output is collected line by line."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            self.lines.append(raw.decode(errors="replace").rstrip())

    def saw(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    async def stop(self, sig: int | None = None) -> None:
        if self.proc.returncode is None:
            if sig is None:
                self.proc.terminate()
            else:
                self.proc.send_signal(sig)
        try:
            await asyncio.wait_for(self.proc.wait(), 15)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        await asyncio.wait_for(self._reader, 5)


async def start(command: str, env: dict[str, str]) -> Child:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bms.cli", command, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    return Child(proc)
