"""End to end over real processes: two `bms serve` on PostgreSQL + a private redis-server."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from websockets.exceptions import ConnectionClosed, InvalidStatus

from bms.settings import Settings
from db.store import Store
from db.tables import events
from domain.sessions import create_session
from domain.tokens import issue_token_pair
from domain.users import create_user
from realtime.service import Realtime, publish_revocation
from tests.conftest import (
    TEST_PASSWORD,
    create_postgres_database,
    drop_postgres_database,
    make_settings,
)
from tests.realtime.helpers import started
from tests.realtime.servers import BMS, E2E_ON_POSTGRES, ROOT, WS, Redis, Server, ws_client

pytestmark = E2E_ON_POSTGRES
QUEUE_MAX = 50
_codes = itertools.count(1)


@dataclass
class Cluster:
    a: Server
    b: Server
    redis: Redis
    settings: Settings
    local: Realtime  # this test process: writes here are published like a server's
    tokens: dict[str, str] = field(default_factory=dict)
    user_ids: dict[str, int] = field(default_factory=dict)

    @property
    def store(self) -> Store:
        return self.local.hub.store

    async def event_ids(self, topic: str, after: int) -> list[int]:
        async with self.store.connection() as conn:
            rows = await conn.fetch_all(
                sa.select(events.c.id)
                .where(events.c.topic == topic, events.c.id > after)
                .order_by(events.c.id)
            )
        return [r["id"] for r in rows]

    async def newest_id(self) -> int:
        async with self.store.connection() as conn:
            return int(
                await conn.fetch_val(sa.select(sa.func.coalesce(sa.func.max(events.c.id), 0)))
            )


async def _make_user(cluster: Cluster, name: str, role: str) -> None:
    async with cluster.store.unit_of_work(actor_id=None) as uow:
        profile = await create_user(uow, username=name, password=TEST_PASSWORD, role=role)
        pair = await issue_token_pair(
            uow, user_id=profile["user"], secret_key=cluster.settings.secret_key,
            access_ttl_secs=3600, refresh_ttl_secs=3600,
        )  # fmt: skip
    cluster.tokens[name] = pair["access"]
    cluster.user_ids[name] = profile["user"]


@pytest.fixture(scope="module")
async def cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    workdir = tmp_path_factory.mktemp("e2e")
    url = await create_postgres_database()
    redis = Redis(workdir)
    servers: list[Server] = []
    try:
        from db import migrate

        await asyncio.gather(asyncio.to_thread(migrate.upgrade, url), redis.start())
        settings = make_settings(url, workdir, redis_url=redis.url)
        env = {
            "DATABASE_URL": url,
            "REDIS_URL": redis.url,
            "REDIS_NAMESPACE": settings.channel_namespace,
            "SECRET_KEY": settings.secret_key,
            "ALLOWED_ORIGINS": "http://dashboard.example",
            "WS_QUEUE_MAX_EVENTS": str(QUEUE_MAX),
            "BMS_ENV": "test",
            "BMS_DATA_DIR": str(workdir),
            "LOG_LEVEL": "warning",
        }
        servers = [Server(env, workdir), Server(env, workdir)]
        await asyncio.gather(*(s.start() for s in servers))
        async with started(settings) as local:
            cluster = Cluster(servers[0], servers[1], redis, settings, local)
            for name, role in [("boss", "manager"), ("op1", "operator"), ("op2", "operator")]:
                await _make_user(cluster, name, role)
            yield cluster
    finally:
        await asyncio.gather(*(s.stop() for s in servers))
        await redis.stop()
        await drop_postgres_database(url)


async def _create_location(http: httpx.AsyncClient, base: str, token: str) -> dict[str, Any]:
    n = next(_codes)
    response = await http.post(
        base + "/api/locations/",
        json={"name": f"Site {n}", "code": f"S{n}-{uuid.uuid4().hex[:6]}", "timezone": "UTC"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 201, response.text
    return response.json()


async def test_change_made_through_b_reaches_a_client_on_a(cluster: Cluster) -> None:
    async with (
        ws_client(cluster.a.ws, token=cluster.tokens["op1"]) as ws,
        httpx.AsyncClient() as http,
    ):
        assert ws.welcome["user"] == {
            "id": cluster.user_ids["op1"],
            "username": "op1",
            "role": "operator",
        }
        await ws.subscribe(["locations"])
        created = await _create_location(http, cluster.b.base, cluster.tokens["boss"])
        await ws.until(lambda w: w.events)
        event = ws.events[0]
        assert (event["topic"], event["action"]) == ("locations", "created")
        assert event["data"] == created


async def _writer(cluster: Cluster, stop: asyncio.Event, statuses: list[int]) -> None:
    """Create locations through process B until told to stop; record every status."""
    async with httpx.AsyncClient(timeout=10) as http:
        while not stop.is_set():
            n = next(_codes)
            response = await http.post(
                cluster.b.base + "/api/locations/",
                json={"name": f"W{n}", "code": f"W{n}-{uuid.uuid4().hex[:6]}", "timezone": "UTC"},
                headers={"Authorization": f"Bearer {cluster.tokens['boss']}"},
            )
            statuses.append(response.status_code)


async def test_resume_after_disconnect_returns_exactly_the_missed_events(cluster: Cluster) -> None:
    start = await cluster.newest_id()
    stop, statuses = asyncio.Event(), []
    writer = asyncio.create_task(_writer(cluster, stop, statuses))
    seen: list[int] = []
    try:
        for _ in range(3):  # connect, read a little, drop; the writer never pauses
            since = seen[-1] if seen else start
            async with ws_client(cluster.a.ws, token=cluster.tokens["op1"]) as ws:
                await ws.subscribe(["locations"], since=since)
                await ws.until(lambda w: len(w.events) >= 5)
                seen.extend(ws.ids())
            await _more_writes(statuses, 5)
    finally:
        stop.set()
        await writer
    async with ws_client(cluster.a.ws, token=cluster.tokens["op1"]) as ws:
        await ws.subscribe(["locations"], since=seen[-1])
        expected = await cluster.event_ids("locations", start)
        await ws.until(lambda w: len(seen) + len(w.ids()) >= len(expected))
        seen.extend(ws.ids())
    assert set(statuses) == {201}
    assert seen == expected


async def _more_writes(statuses: list[int], count: int) -> None:
    """Wait until the writer finished `count` more requests (polled: no event to await)."""
    goal = len(statuses) + count
    async with asyncio.timeout(15):
        while len(statuses) < goal:
            await asyncio.sleep(0.01)


async def test_redis_restart_mid_stream_misses_nothing(cluster: Cluster) -> None:
    start = await cluster.newest_id()
    stop, statuses = asyncio.Event(), []
    writer = asyncio.create_task(_writer(cluster, stop, statuses))
    seen: list[int] = []
    ws_ctx = ws_client(cluster.a.ws, token=cluster.tokens["op1"])
    ws: WS = await ws_ctx.__aenter__()
    try:
        await ws.subscribe(["locations"], since=start)
        await ws.until(lambda w: len(w.events) >= 5)
        await cluster.redis.stop()
        await _more_writes(statuses, 10)
        await cluster.redis.start()
        await _more_writes(statuses, 10)
        stop.set()
        await writer
        expected = await cluster.event_ids("locations", start)
        try:
            await ws.until(lambda w: len(w.ids()) >= len(expected), timeout=10)
            seen = ws.ids()
        except ConnectionClosed:  # allowed: resume from the last id instead
            seen = ws.ids()
            async with ws_client(cluster.a.ws, token=cluster.tokens["op1"]) as again:
                await again.subscribe(["locations"], since=seen[-1])
                await again.until(lambda w: len(seen) + len(w.ids()) >= len(expected))
                seen += again.ids()
    finally:
        stop.set()
        await writer
        await ws_ctx.__aexit__(None, None, None)
    assert set(statuses) == {201}, "a write failed while Redis was down"
    assert seen == expected


async def test_operator_never_receives_another_operators_private_events(cluster: Cluster) -> None:
    topics = ["time-off-requests", "time-entries", "notifications", "shifts"]
    op2 = cluster.user_ids["op2"]
    async with (
        ws_client(cluster.a.ws, token=cluster.tokens["op1"]) as op1_ws,
        ws_client(cluster.b.ws, token=cluster.tokens["op2"]) as op2_ws,
        ws_client(cluster.b.ws, token=cluster.tokens["boss"]) as boss_ws,
    ):
        for ws in (op1_ws, op2_ws, boss_ws):
            await ws.subscribe(topics)
        async with cluster.store.unit_of_work(actor_id=None) as uow:
            uow.emit("time-off-requests", "created", object_id=1, data={"id": 1, "user": op2},
                     owner_id=op2, private=True)  # fmt: skip
            uow.emit("time-entries", "created", object_id=1, data={"id": 1}, owner_id=op2,
                     private=True)  # fmt: skip
            uow.emit("notifications", "created", object_id=1, data={"id": 1}, owner_id=op2)
            uow.emit("shifts", "created", object_id=1, data={"id": 1})
        marker = uow.committed_events[-1].id
        for ws in (op1_ws, op2_ws, boss_ws):
            await ws.until(lambda w: marker in w.ids())
    assert [e["topic"] for e in op1_ws.events] == ["shifts"]
    assert [e["topic"] for e in op2_ws.events] == topics
    assert [e["topic"] for e in boss_ws.events] == ["time-off-requests", "time-entries", "shifts"]


async def test_cookie_socket_needs_an_allowed_origin(cluster: Cluster) -> None:
    async with cluster.store.unit_of_work(actor_id=None) as uow:
        key = await create_session(uow, user_id=cluster.user_ids["op1"], ttl_secs=600)
    cookie = {"Cookie": f"sessionid={key}"}
    with pytest.raises(InvalidStatus) as refused:
        async with ws_client(cluster.a.ws, headers={**cookie, "Origin": "http://evil.example"}):
            pass
    assert refused.value.response.status_code == 403
    for origin in ("http://dashboard.example", cluster.a.base):
        async with ws_client(cluster.a.ws, headers={**cookie, "Origin": origin}) as ws:
            assert ws.welcome["user"]["username"] == "op1"
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Cookie": "sessionid=nope"}):
        with pytest.raises(InvalidStatus) as refused:
            async with ws_client(cluster.a.ws, headers=headers):
                pass
        assert refused.value.response.status_code == 403
    async with ws_client(cluster.a.ws + f"?token={cluster.tokens['op2']}") as ws:
        assert ws.welcome["user"]["username"] == "op2"


async def test_bad_messages_get_errors_and_the_socket_stays_usable(cluster: Cluster) -> None:
    async with ws_client(cluster.a.ws, token=cluster.tokens["op1"]) as ws:
        bad = [
            "not json",
            {"no": "type"},
            {"type": "dance"},
            {"type": "subscribe", "topics": ["nope"]},
            {"type": "subscribe", "topics": ["shifts"], "since": -1},
            {"type": "subscribe", "topics": ["shifts"], "filter": [1]},
        ]
        codes = []
        for message in bad:
            await ws.send(message)
            frame = await ws.frame()
            assert frame["type"] == "error", frame
            codes.append(frame["code"])
        assert codes == ["invalid_json", "invalid_message", "unknown_type", "unknown_topic",
                         "invalid_since", "invalid_filter"]  # fmt: skip
        # Filters follow the REST list filters of the topic's resource (CONTRACT §5).
        bad_filters = [
            ({"facility": ["abc"]}, "filter 'facility': Enter a whole number."),
            ({"facility": [3000000000]}, "filter 'facility': Ensure this value is between"),
            ({"colour": [1]}, "filter 'colour': not a filter of topic 'shifts'"),
            ({"status": ["sleeping"]}, "filter 'status': Select a valid choice."),
            ({"start_after": ["2026-01-01"]}, "filter 'start_after': not a filter of topic"),
        ]
        for bad_filter, detail in bad_filters:
            await ws.send({"type": "subscribe", "topics": ["shifts"], "filter": bad_filter})
            frame = await ws.frame()
            assert frame["code"] == "bad_filter" and frame["detail"].startswith(detail), frame
        for since in ["9" * 23, str(2**63)]:  # past 64 bits: say what is wrong
            await ws.send('{"type": "subscribe", "topics": ["shifts"], "since": ' + since + "}")
            frame = await ws.frame()
            assert frame["code"] == "invalid_since", frame
            assert frame["detail"] == "since must be an event id from 0 to 9223372036854775807"
        good = {"facility": [3], "status": ["confirmed"]}
        assert (await ws.subscribe(["shifts"], filter=good))["topics"] == ["shifts"]
        await ws.conn.send(b"\x00binary")
        assert (await ws.frame())["code"] == "invalid_message"
        await ws.send({"type": "ping"})
        assert await ws.frame() == {"type": "pong"}
        assert (await ws.subscribe(["shifts"]))["topics"] == ["shifts"]
        await ws.send({"type": "unsubscribe", "topics": ["shifts"]})
        assert (await ws.frame())["type"] == "unsubscribed"


async def test_slow_consumer_is_closed_with_4008_and_memory_stays_bounded(
    cluster: Cluster,
) -> None:
    payload = "x" * 64 * 1024
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", cluster.a.port))
    peak = [cluster.a.rss_kib()]
    before = peak[0]

    async def sample() -> None:  # RSS has no event to await: sample it while flooding
        while True:
            peak.append(cluster.a.rss_kib())
            await asyncio.sleep(0.005)

    async with (
        ws_client(
            cluster.a.ws, token=cluster.tokens["op1"], sock=sock, max_queue=1, max_size=2**20
        ) as ws,
        ws_client(cluster.a.ws, token=cluster.tokens["op1"], max_size=2**20) as pace,
    ):
        await ws.subscribe(["incident-tickets"])
        await pace.subscribe(["incident-tickets"])
        sampler = asyncio.create_task(sample())
        for _ in range(40):  # 800 events of 64 KiB = 50 MiB, far beyond the 50-event bound
            async with cluster.store.unit_of_work(actor_id=None) as uow:
                for n in range(20):
                    uow.emit(
                        "incident-tickets", "updated", object_id=n, data={"id": n, "x": payload}
                    )
            # A reader that keeps up paces the writer to the server: what the server holds is
            # then the slow socket's queue, not a Redis backlog a loaded machine has not read yet.
            await pace.until(lambda w: len(w.events) >= 20, timeout=60)
            pace.events.clear()
        with pytest.raises(ConnectionClosed) as closed:
            await ws.until(lambda w: False, timeout=30)
        sampler.cancel()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4008
    assert len(ws.events) < 800
    growth = max(peak) - before
    assert growth < 20 * 1024, f"server grew by {growth // 1024} MiB for 50 MiB of events"


async def test_revoked_user_loses_open_sockets_on_every_process(cluster: Cluster) -> None:
    async with (
        ws_client(cluster.a.ws, token=cluster.tokens["op2"]) as on_a,
        ws_client(cluster.b.ws, token=cluster.tokens["op2"]) as on_b,
    ):
        await publish_revocation(cluster.local.hub, cluster.user_ids["op2"])
        for ws in (on_a, on_b):
            with pytest.raises(ConnectionClosed) as closed:
                await ws.until(lambda w: False)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


@pytest.mark.parametrize("credential", ["token", "api-key"])
async def test_bms_subscribe_prints_events_as_json_lines(cluster: Cluster, credential: str) -> None:
    env = {**os.environ}
    args = ["--token", cluster.tokens["op1"]]
    if credential == "api-key":  # from the environment: a developer's tail that runs for days
        env["BMS_API_KEY"] = (await _api_key(cluster, "op1"))["key"]
        args = []
    proc = await asyncio.create_subprocess_exec(
        BMS, "subscribe", "locations", "--url", cluster.a.base, "--json",
        *args, "--since", str(await cluster.newest_id()),
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    try:
        async with httpx.AsyncClient() as http:
            created = await _create_location(http, cluster.b.base, cluster.tokens["boss"])
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 15)
        event = json.loads(line)
        assert event["data"] == created
    finally:
        proc.terminate()
        await proc.wait()


async def test_stopping_a_server_closes_sockets_as_going_away(
    cluster: Cluster, tmp_path: Path
) -> None:
    server = Server(cluster.a.env, tmp_path)
    await server.start()
    try:
        async with ws_client(server.ws, token=cluster.tokens["op1"]) as ws:
            await server.stop()
            with pytest.raises(ConnectionClosed) as closed:
                await ws.until(lambda w: False)
        assert closed.value.rcvd is not None and closed.value.rcvd.code in (1001, 1012)
    finally:
        await server.stop()


async def _api_key(cluster: Cluster, owner: str, **body: Any) -> dict[str, Any]:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            cluster.a.base + "/api/api-keys/",
            json={"name": "wall", **body},
            headers={"Authorization": f"Bearer {cluster.tokens[owner]}"},
        )
    assert response.status_code == 201, response.text
    return response.json()


async def _closed_within(ws: WS, secs: float) -> int | None:
    with pytest.raises(ConnectionClosed) as closed:
        await ws.until(lambda w: False, timeout=secs)
    return closed.value.rcvd.code if closed.value.rcvd is not None else None


async def test_api_key_sockets_close_within_a_second_of_revocation(cluster: Cluster) -> None:
    created = await _api_key(cluster, "op1", scope="read")
    key = created["key"]
    async with (
        ws_client(cluster.a.ws, subprotocols=["bms", f"bearer.{key}"]) as browser_like,
        ws_client(cluster.b.ws, token=key) as script,
    ):
        assert browser_like.conn.subprotocol == "bms"
        assert browser_like.welcome["user"]["username"] == "op1"
        await browser_like.subscribe(["locations"])
        async with httpx.AsyncClient() as http:
            revoked = await http.delete(
                f"{cluster.b.base}/api/api-keys/{created['id']}/",
                headers={"Authorization": f"Bearer {cluster.tokens['op1']}"},
            )
        assert revoked.status_code == 204
        for ws in (browser_like, script):
            assert await _closed_within(ws, 1.0) == 4401
    with pytest.raises(InvalidStatus):
        async with ws_client(cluster.a.ws, subprotocols=["bms", f"bearer.{key}"]):
            pass


async def test_api_key_sockets_close_when_the_owner_is_deactivated(cluster: Cluster) -> None:
    await _make_user(cluster, "kiosk", "viewer")
    await _make_user(cluster, "root", "admin")
    key = (await _api_key(cluster, "kiosk"))["key"]
    async with ws_client(cluster.b.ws, subprotocols=["bms", f"bearer.{key}"]) as ws:
        async with httpx.AsyncClient() as http:
            profiles = await http.get(
                f"{cluster.a.base}/api/profiles/",
                params={"search": "kiosk"},
                headers={"Authorization": f"Bearer {cluster.tokens['root']}"},
            )
            profile_id = profiles.json()["results"][0]["id"]
            response = await http.patch(
                f"{cluster.a.base}/api/profiles/{profile_id}/",
                json={"is_active": False},
                headers={"Authorization": f"Bearer {cluster.tokens['root']}"},
            )
        assert response.status_code == 200, response.text
        assert await _closed_within(ws, 1.0) == 4401


async def _bms_subscribe(*args: str, stdin: bytes | None = None) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        BMS, "subscribe", *args, cwd=ROOT, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    if stdin is not None:
        assert proc.stdin is not None
        proc.stdin.write(stdin)
        await proc.stdin.drain()
    return proc


async def _stderr_line(proc: asyncio.subprocess.Process, containing: str) -> str:
    """The first stderr line with `containing` (the command's notes go to stderr)."""
    assert proc.stderr is not None
    async with asyncio.timeout(30):
        while containing not in (line := (await proc.stderr.readline()).decode()):
            assert line, f"stderr ended before {containing!r}"
    return line


@pytest.mark.parametrize(
    ("args", "refusal"),
    [
        (["nope"], "unknown_topic: unknown topics: nope"),
        (["shifts", "--filter", "colour=1"], "bad_filter: filter 'colour'"),
        (["shifts", "--filter", "facility=abc"], "bad_filter: filter 'facility'"),
    ],
)
async def test_bms_subscribe_exits_when_its_subscription_is_refused(
    cluster: Cluster, args: list[str], refusal: str
) -> None:
    proc = await _bms_subscribe(*args, "--url", cluster.a.base, "--token", cluster.tokens["op1"])
    try:
        line = await _stderr_line(proc, "subscription refused")
        assert refusal in line
        assert await asyncio.wait_for(proc.wait(), 30) == 2
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_bms_subscribe_says_what_it_subscribed_from_which_id(cluster: Cluster) -> None:
    newest = await cluster.newest_id()
    proc = await _bms_subscribe(
        "locations", "shifts", "--url", cluster.a.base, "--token", cluster.tokens["op1"], "--json"
    )
    try:
        line = await _stderr_line(proc, "subscribed")
        assert line.strip() == (
            f"bms subscribe: subscribed to locations, shifts, from event id {newest}"
        )
    finally:
        proc.terminate()
        await proc.wait()


async def test_bms_subscribe_renews_its_login_and_a_bare_token_says_what_to_do(
    cluster: Cluster,
) -> None:
    await _make_user(cluster, "tail", "viewer")
    logged_in = await _bms_subscribe(
        "locations", "--url", cluster.a.base, "--username", "tail", "--json",
        stdin=(TEST_PASSWORD + "\n").encode(),
    )  # fmt: skip
    bare = await _bms_subscribe("locations", "--url", cluster.a.base, "--token",
                                cluster.tokens["tail"])  # fmt: skip
    try:
        for proc in (logged_in, bare):
            await _stderr_line(proc, "subscribed to locations")
        # The server refuses both sockets (4401), as when an access token expires.
        await publish_revocation(cluster.local.hub, cluster.user_ids["tail"])
        line = await _stderr_line(bare, "authentication failed")
        assert "--api-key" in line and "BMS_API_KEY" in line
        assert await asyncio.wait_for(bare.wait(), 30) == 1
        await _stderr_line(logged_in, "subscribed to locations")  # renewed, resumed
        async with httpx.AsyncClient() as http:
            created = await _create_location(http, cluster.b.base, cluster.tokens["boss"])
        assert logged_in.stdout is not None
        event = json.loads(await asyncio.wait_for(logged_in.stdout.readline(), 30))
        assert event["data"] == created
    finally:
        for proc in (logged_in, bare):
            if proc.returncode is None:
                proc.terminate()
                await proc.wait()
