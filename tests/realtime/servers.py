"""Real processes for end-to-end tests: private redis-server and `bms serve` instances."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.conftest import BACKENDS

ROOT = Path(__file__).resolve().parents[2]
# The marks of every test module that runs real processes on PostgreSQL + Redis.
E2E_ON_POSTGRES = [
    pytest.mark.e2e,
    pytest.mark.skipif("postgres" not in BACKENDS, reason="needs PostgreSQL"),
]
BMS = str(Path(sys.executable).parent / "bms")
START_SECS = 120.0  # a loaded machine starts slowly (as tests/e2e/processes.py)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One `bms serve` process on its own port."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.port = free_port()
        self.env = env
        self.workdir = workdir
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/"

    async def start(self) -> None:
        log = open(self.workdir / f"serve-{self.port}.log", "wb")  # noqa: SIM115
        self.proc = await asyncio.create_subprocess_exec(
            BMS, "serve", "--host", "127.0.0.1", "--port", str(self.port),
            env={**os.environ, **self.env}, cwd=ROOT, stdout=log, stderr=log,
        )  # fmt: skip
        async with httpx.AsyncClient(timeout=1) as http, asyncio.timeout(START_SECS):
            while True:  # no event to await: poll the health endpoint
                assert self.proc.returncode is None, self.log_tail()
                try:
                    if (await http.get(self.base + "/healthz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)

    def log_tail(self) -> str:
        return (self.workdir / f"serve-{self.port}.log").read_text()[-3000:]

    async def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(sig)
            try:
                async with asyncio.timeout(15):
                    await self.proc.wait()
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()

    def rss_kib(self, field: str = "VmRSS") -> int:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise LookupError(field)


class Redis:
    """A private redis-server that a test may stop and start again on the same port."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        from tests.realtime.test_redis_backend import _start_redis

        self.proc = await _start_redis(self.port, self.workdir)

    async def stop(self) -> None:
        from tests.realtime.test_redis_backend import _stop

        if self.proc is not None:
            await _stop(self.proc)


class WS:
    """A websockets client with bounded waits for frames and events."""

    def __init__(self, conn: ClientConnection) -> None:
        self.conn = conn
        self.welcome: dict[str, Any] = {}
        self.events: list[dict[str, Any]] = []

    async def frame(self, timeout: float = 10) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            return json.loads(await self.conn.recv())

    async def send(self, message: Any) -> None:
        await self.conn.send(message if isinstance(message, str) else json.dumps(message))

    async def subscribe(self, topics: list[str], **extra: Any) -> dict[str, Any]:
        await self.send({"type": "subscribe", "topics": topics, **extra})
        while (frame := await self.frame())["type"] != "subscribed":
            self._keep(frame)
        return frame

    def _keep(self, frame: dict[str, Any]) -> None:
        if frame["type"] == "event":
            self.events.append(frame)

    async def until(self, pred: Any, timeout: float = 15) -> None:
        """Read frames until pred(self) holds."""
        async with asyncio.timeout(timeout):
            while not pred(self):
                self._keep(json.loads(await self.conn.recv()))

    def ids(self, topic: str | None = None) -> list[int]:
        return [e["id"] for e in self.events if topic in (None, e["topic"])]


@asynccontextmanager
async def ws_client(
    url: str,
    *,
    token: str | None = None,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> AsyncIterator[WS]:
    extra = dict(headers or {})
    if token:
        extra["Authorization"] = f"Bearer {token}"
    async with connect(
        url, additional_headers=extra, compression=None, open_timeout=10, **kwargs
    ) as conn:
        client = WS(conn)
        client.welcome = await client.frame()
        assert client.welcome["type"] == "welcome"
        yield client
