"""A socket lives only as long as its credential and its user's role (issue #10 §3, contract
section 5): token expiry closes it with 4401 unless renewed in-band, a role change closes it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from db import migrate
from db.store import Store
from domain.tokens import issue_token_pair
from domain.users import create_user
from tests.conftest import TEST_PASSWORD
from tests.realtime.servers import WS, Server, ws_client

pytestmark = pytest.mark.e2e
SECRET = "socket-credentials-secret-" + "x" * 32
SHORT_TTL_SECS = 2
LONG_TTL_SECS = 3600


@dataclass
class Served:
    server: Server
    store: Store
    user_ids: dict[str, int] = field(default_factory=dict)

    async def token(self, name: str, ttl_secs: int = LONG_TTL_SECS) -> str:
        async with self.store.unit_of_work(actor_id=None) as uow:
            pair = await issue_token_pair(
                uow, user_id=self.user_ids[name], secret_key=SECRET,
                access_ttl_secs=ttl_secs, refresh_ttl_secs=ttl_secs,
            )  # fmt: skip
        return pair["access"]


@pytest.fixture(scope="module")
async def served(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Served]:
    """One `bms serve` on a SQLite file this test process writes users and tokens into."""
    workdir: Path = tmp_path_factory.mktemp("socket-credentials")
    url = f"sqlite+aiosqlite:///{workdir / 'bms.sqlite3'}"
    await asyncio.to_thread(migrate.upgrade, url)
    env = {
        "DATABASE_URL": url, "REDIS_URL": "", "SECRET_KEY": SECRET, "BMS_ENV": "test",
        "BMS_DATA_DIR": str(workdir), "LOG_LEVEL": "warning",
        "ALLOWED_ORIGINS": "http://dashboard.example",
    }  # fmt: skip
    server = Server(env, workdir)
    store = Store(url)
    await store.connect()
    try:
        await server.start()
        served = Served(server, store)
        for name, role in [("chief", "admin"), ("lead", "manager"), ("crew", "operator")]:
            async with store.unit_of_work(actor_id=None) as uow:
                profile = await create_user(uow, username=name, password=TEST_PASSWORD, role=role)
            served.user_ids[name] = profile["user"]
        yield served
    finally:
        await server.stop()
        await store.disconnect()


async def _closed_code(ws: WS, timeout: float = 20) -> int | None:
    """Read until the server closes the socket; its close code."""
    with pytest.raises(ConnectionClosed) as closed:
        await ws.until(lambda w: False, timeout=timeout)
    return closed.value.rcvd.code if closed.value.rcvd else None


async def test_token_socket_closes_when_its_access_token_expires(served: Served) -> None:
    token = await served.token("crew", ttl_secs=SHORT_TTL_SECS)
    async with ws_client(served.server.ws, token=token) as ws:
        assert await _closed_code(ws) == 4401


async def test_reauthenticated_socket_outlives_its_first_token(served: Served) -> None:
    short, fresh = await asyncio.gather(
        served.token("crew", ttl_secs=SHORT_TTL_SECS), served.token("crew")
    )
    async with (
        ws_client(served.server.ws, token=short) as renewed,
        ws_client(served.server.ws, token=short) as witness,
    ):
        await renewed.send({"type": "reauthenticate", "token": fresh})
        assert (await renewed.frame())["type"] == "reauthenticated"
        assert await _closed_code(witness) == 4401  # the first token has expired now
        await renewed.send({"type": "ping"})
        assert (await renewed.frame()) == {"type": "pong"}


async def test_reauthenticate_with_a_bad_or_foreign_token_closes_4401(served: Served) -> None:
    mine, theirs = await asyncio.gather(served.token("crew"), served.token("lead"))
    for bad in ("not-a-token", theirs):
        async with ws_client(served.server.ws, token=mine) as ws:
            await ws.send({"type": "reauthenticate", "token": bad})
            assert await _closed_code(ws) == 4401


async def test_role_change_closes_the_users_sockets(served: Served) -> None:
    async with served.store.unit_of_work(actor_id=None) as uow:
        demoted = await create_user(uow, username="demoted", password=TEST_PASSWORD, role="manager")
    served.user_ids["demoted"] = demoted["user"]
    token, admin = await asyncio.gather(served.token("demoted"), served.token("chief"))
    async with (
        ws_client(served.server.ws, token=token) as ws,
        httpx.AsyncClient(base_url=served.server.base, timeout=30) as http,
    ):
        await ws.subscribe(["time-off-requests"])
        response = await http.patch(
            f"/api/profiles/{demoted['id']}/",
            json={"role": "operator"},
            headers={"Authorization": f"Bearer {admin}"},
        )
        assert response.status_code == 200, response.text
        assert await _closed_code(ws) == 4401
    async with ws_client(served.server.ws, token=token) as again:  # the token still stands
        assert again.welcome["user"]["role"] == "operator"
