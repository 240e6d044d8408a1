"""deploy/caddy/Caddyfile, run by Debian's caddy, in front of two `bms serve` processes on
PostgreSQL + Redis with a local certificate: REST and /ws/ through TLS, an event written
through one node reaching a socket on the other, and a node stopped mid-stream whose
clients reconnect through the proxy and resume with nothing lost."""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import signal
import ssl
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from websockets.exceptions import ConnectionClosed

from db import migrate
from db.store import Store
from db.tables import events
from domain.tokens import issue_token_pair
from domain.users import create_user
from tests.conftest import (
    BACKENDS,
    REDIS_URL,
    RUN_NAMESPACE,
    TEST_PASSWORD,
    create_postgres_database,
    drop_postgres_database,
)
from tests.realtime.servers import Server, free_port, ws_client

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif("postgres" not in BACKENDS, reason="needs PostgreSQL and Redis"),
]
CADDYFILE = Path(__file__).resolve().parents[2] / "deploy" / "caddy" / "Caddyfile"
START_SECS = 60.0
_codes = itertools.count(1)


@dataclass
class Proxy:
    """`caddy run` with the repository's Caddyfile on free ports; its local CA's root."""

    workdir: Path
    upstreams: list[str]
    https_port: int = field(default_factory=free_port)
    proc: asyncio.subprocess.Process | None = None

    @property
    def base(self) -> str:
        return f"https://localhost:{self.https_port}"

    @property
    def ws(self) -> str:
        return f"wss://localhost:{self.https_port}/ws/"

    @property
    def root_cert(self) -> Path:
        return self.workdir / "data" / "caddy" / "pki" / "authorities" / "local" / "root.crt"

    async def start(self) -> ssl.SSLContext:
        caddy = shutil.which("caddy")
        assert caddy, "caddy is missing: .ci/run installs Debian's caddy package"
        env = {
            **os.environ,
            "HOME": str(self.workdir),
            "XDG_DATA_HOME": str(self.workdir / "data"),
            "XDG_CONFIG_HOME": str(self.workdir / "config"),
            "BMS_SITE_ADDRESS": "localhost",
            "BMS_TLS": "internal",
            "BMS_UPSTREAMS": "to " + " ".join(self.upstreams),
            "CADDY_HTTPS_PORT": str(self.https_port),
            "CADDY_HTTP_PORT": str(free_port()),
        }
        log = open(self.workdir / "caddy.log", "wb")  # noqa: SIM115
        self.proc = await asyncio.create_subprocess_exec(
            caddy, "run", "--config", str(CADDYFILE), "--adapter", "caddyfile",
            env=env, stdout=log, stderr=log,
        )  # fmt: skip
        async with asyncio.timeout(START_SECS):
            while True:  # no event to await: poll until the certificate and a node answer
                assert self.proc.returncode is None, self.log_tail()
                if self.root_cert.exists():
                    context = ssl.create_default_context(cafile=str(self.root_cert))
                    try:
                        async with httpx.AsyncClient(verify=context, timeout=2) as http:
                            if (await http.get(self.base + "/healthz")).status_code == 200:
                                return context
                    except (httpx.TransportError, ssl.SSLError):
                        pass
                await asyncio.sleep(0.1)

    def log_tail(self) -> str:
        return (self.workdir / "caddy.log").read_text()[-3000:]

    def errors(self) -> str:
        """Caddy's error lines (upstream failures), for a failing assertion's message."""
        lines = (self.workdir / "caddy.log").read_text().splitlines()
        return "\n".join(line[:400] for line in lines if '"level":"error"' in line)

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(15):
                    await self.proc.wait()
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


@dataclass
class Deployment:
    a: Server
    b: Server
    proxy: Proxy
    tls: ssl.SSLContext
    store: Store
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def event_ids(self, after: int) -> list[int]:
        async with self.store.connection() as conn:
            rows = await conn.fetch_all(
                sa.select(events.c.id)
                .where(events.c.topic == "locations", events.c.id > after)
                .order_by(events.c.id)
            )
        return [r["id"] for r in rows]

    async def newest_id(self) -> int:
        return max(await self.event_ids(0), default=0)


@pytest.fixture(scope="module")
async def deployment(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Deployment]:
    workdir = tmp_path_factory.mktemp("caddy")
    url = await create_postgres_database()
    servers: list[Server] = []
    proxy: Proxy | None = None
    store = Store(url)
    try:
        await asyncio.to_thread(migrate.upgrade, url)
        secret = "caddy-e2e-" + uuid.uuid4().hex * 2
        env = {
            "DATABASE_URL": url,
            "REDIS_URL": REDIS_URL,
            "REDIS_NAMESPACE": f"{RUN_NAMESPACE}:{uuid.uuid4().hex[:12]}",
            "SECRET_KEY": secret,
            "BMS_ENV": "test",
            "BMS_DATA_DIR": str(workdir),
            "ALLOWED_HOSTS": "localhost,127.0.0.1",  # the proxy's name; the test also goes direct
            "TRUSTED_PROXIES": "127.0.0.1",
            "SCHEDULER_EMBEDDED": "false",
            "LOG_LEVEL": "warning",
        }
        servers = [Server(env, workdir), Server(env, workdir)]
        await asyncio.gather(*(s.start() for s in servers))
        proxy = Proxy(workdir, [f"127.0.0.1:{s.port}" for s in servers])
        tls = await proxy.start()
        await store.connect()
        async with store.unit_of_work(actor_id=None) as uow:
            boss = await create_user(uow, username="boss", password=TEST_PASSWORD, role="manager")
            pair = await issue_token_pair(
                uow, user_id=boss["user"], secret_key=secret, access_ttl_secs=3600,
                refresh_ttl_secs=3600,
            )  # fmt: skip
        yield Deployment(servers[0], servers[1], proxy, tls, store, pair["access"])
    finally:
        if proxy is not None:
            await proxy.stop()
        await asyncio.gather(*(s.stop() for s in servers))
        await store.disconnect()
        await drop_postgres_database(url)


async def _create_location(
    http: httpx.AsyncClient, base: str, auth: dict[str, str], proxy_errors: list[int] | None = None
) -> int:
    """POST a location; with `proxy_errors`, retry a 502/503 as a client would (and note it)."""
    n = next(_codes)
    body = {"name": f"Site {n}", "code": f"C{n}-{uuid.uuid4().hex[:6]}", "timezone": "UTC"}
    for delay in (0.2, 0.5, 1, 2, 4, 0):
        response = await http.post(base + "/api/locations/", json=body, headers=auth)
        if proxy_errors is None or response.status_code not in (502, 503) or not delay:
            return response.status_code
        proxy_errors.append(response.status_code)  # the request was cut with its node
        await asyncio.sleep(delay)
    raise AssertionError("unreachable")


async def test_rest_through_tls_proxy_with_hsts_and_forwarded_scheme(d: Deployment) -> None:
    async with httpx.AsyncClient(verify=d.tls, timeout=10) as http:
        for _ in range(2):
            assert await _create_location(http, d.proxy.base, d.auth) == 201
        listed = await http.get(d.proxy.base + "/api/locations/?page_size=1", headers=d.auth)
        assert listed.status_code == 200
        assert listed.headers["strict-transport-security"].startswith("max-age=31536000")
        # The node trusts the proxy's X-Forwarded-Proto: links point at the HTTPS address.
        assert listed.json()["next"].startswith(d.proxy.base + "/api/locations/?")
        assert "server" not in listed.headers


async def test_event_written_through_one_node_reaches_a_socket_on_the_other(
    d: Deployment,
) -> None:
    async with ws_client(d.b.ws, token=d.token) as on_b, httpx.AsyncClient() as http:
        await on_b.subscribe(["locations"])
        async with ws_client(d.proxy.ws, token=d.token, ssl=d.tls) as via_proxy:
            await via_proxy.subscribe(["locations"])
            assert await _create_location(http, d.a.base, d.auth) == 201
            await on_b.until(lambda w: w.events)
            await via_proxy.until(lambda w: w.events)
            assert on_b.ids() == via_proxy.ids()


async def _reader(d: Deployment, since: int, seen: list[int], reconnects: list[int]) -> None:
    """Read locations events through the proxy forever, resuming after each disconnect."""
    while True:
        try:
            async with ws_client(d.proxy.ws, token=d.token, ssl=d.tls) as ws:
                await ws.subscribe(["locations"], since=seen[-1] if seen else since)
                while True:
                    ws.events.clear()
                    await ws.until(lambda w: w.events, timeout=120)
                    seen.extend(ws.ids())
        except (ConnectionClosed, OSError):
            reconnects.append(1)


async def test_node_stopped_mid_stream_clients_resume_through_the_proxy(d: Deployment) -> None:
    start = await d.newest_id()
    readers = [([], []) for _ in range(4)]  # (seen ids, reconnects): two land on each node
    tasks = [asyncio.create_task(_reader(d, start, seen, rc)) for seen, rc in readers]
    statuses: list[int] = []
    cut: list[int] = []  # at most the request in flight on the stopping node
    try:
        async with httpx.AsyncClient(verify=d.tls, timeout=30) as http:

            async def write(count: int) -> None:
                for _ in range(count):
                    statuses.append(await _create_location(http, d.proxy.base, d.auth, cut))

            await write(5)
            stopping = asyncio.create_task(d.a.stop())  # mid-stream: writes go on
            await write(15)
            await stopping
            await write(5)
        expected = await d.event_ids(start)
        assert set(statuses) == {201} and len(cut) <= 1, f"{statuses} {cut}\n{d.proxy.errors()}"
        assert len(expected) in (25, 26), (expected, start)  # 26: the cut request had committed
        async with asyncio.timeout(60):
            while any(len(seen) < len(expected) for seen, _ in readers):
                await asyncio.sleep(0.05)  # readers run in their own tasks: poll their lists
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for seen, _ in readers:
        assert seen == expected  # in order, nothing lost, nothing twice
    assert sum(len(rc) for _, rc in readers) >= 1  # the clients of the stopped node came back


@pytest.fixture
def d(deployment: Deployment) -> Deployment:
    return deployment
