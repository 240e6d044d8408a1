"""The per-process credential cache (api/auth/credential_cache.py): what it may serve, and
that every way a credential ends reaches it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from api.app import create_app
from api.auth.credential_cache import CredentialCache
from bms.settings import Settings, load_settings
from db.store import Store
from db.tables import users
from domain.actors import Actor, Role
from domain.users import create_user
from tests.realtime.servers import Redis

PASSWORD = "correct-horse-battery-staple"

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Channel:
    """The revocation channel as the cache sees it: an epoch, or None while down."""

    def __init__(self) -> None:
        self.epoch: int | None = 0

    def __call__(self) -> int | None:
        return self.epoch


def actor(user_id: int = 1, **fields: object) -> Actor:
    values: dict[str, object] = {"via": "token", "credential_id": f"jti{user_id}"}
    values.update(fields)
    return Actor(user_id, f"user{user_id}", Role.OPERATOR, **values)  # type: ignore[arg-type]


def attached(max_age_secs: float = 10) -> tuple[CredentialCache, Clock, Channel]:
    clock, channel = Clock(), Channel()
    cache = CredentialCache(max_age_secs=max_age_secs, clock=clock)
    cache.attach(channel)
    return cache, clock, channel


def stored(cache: CredentialCache, credential: str = "tok", who: Actor | None = None) -> Actor:
    who = who or actor()
    cache.store("bearer", credential, who, cache.ticket())
    return who


def test_a_stored_credential_is_served_until_its_max_age() -> None:
    cache, clock, _ = attached(max_age_secs=10)
    who = stored(cache)
    assert cache.lookup("bearer", "tok", now=NOW) is who
    clock.now += 9.9
    assert cache.lookup("bearer", "tok", now=NOW) is who
    clock.now += 0.1
    assert cache.lookup("bearer", "tok", now=NOW) is None
    assert len(cache) == 0


def test_never_past_the_credentials_expiry() -> None:
    cache, _, _ = attached()
    stored(cache, who=actor(expires_at=NOW + timedelta(seconds=1)))
    assert cache.lookup("bearer", "tok", now=NOW) is not None
    assert cache.lookup("bearer", "tok", now=NOW + timedelta(seconds=1)) is None


def test_kinds_are_apart() -> None:
    """A bearer string equal to a session key is not that session."""
    cache, _, _ = attached()
    stored(cache, "same")
    assert cache.lookup("session", "same", now=NOW) is None


def test_a_revocation_forgets_every_credential_of_that_user_only() -> None:
    cache, _, _ = attached()
    stored(cache, "a", actor(1))
    stored(cache, "b", actor(1, credential_id="other"))
    other = stored(cache, "c", actor(2))
    cache.revoke(1)
    assert cache.lookup("bearer", "a", now=NOW) is None
    assert cache.lookup("bearer", "b", now=NOW) is None
    assert cache.lookup("bearer", "c", now=NOW) is other


def test_a_revocation_during_a_lookup_keeps_its_result_out() -> None:
    """The lookup's database read may predate the revocation's commit."""
    cache, _, _ = attached()
    ticket = cache.ticket()
    cache.revoke(99)  # any user: the read in flight may be of a credential it ended
    cache.store("bearer", "tok", actor(), ticket)
    assert cache.lookup("bearer", "tok", now=NOW) is None


def test_nothing_is_served_or_stored_while_the_channel_is_down() -> None:
    cache, _, channel = attached()
    stored(cache, "before")
    channel.epoch = None
    assert cache.lookup("bearer", "before", now=NOW) is None
    stored(cache, "during")
    channel.epoch = 1
    assert cache.lookup("bearer", "during", now=NOW) is None
    assert len(cache) == 0


def test_entries_from_before_a_reconnection_are_not_served() -> None:
    """Revocations broadcast while the channel was down were lost."""
    cache, _, channel = attached()
    stored(cache, "before")
    ticket = cache.ticket()
    channel.epoch = 1  # reconnected
    assert cache.lookup("bearer", "before", now=NOW) is None
    cache.store("bearer", "read-across", actor(), ticket)
    assert cache.lookup("bearer", "read-across", now=NOW) is None
    after = stored(cache, "after")
    assert cache.lookup("bearer", "after", now=NOW) is after


def test_off_detached_or_with_max_age_zero() -> None:
    cache = CredentialCache(max_age_secs=10)
    stored(cache)
    assert len(cache) == 0  # never attached: no channel to trust
    off, _, _ = attached(max_age_secs=0)
    stored(off)
    assert len(off) == 0
    on, _, _ = attached()
    stored(on)
    on.detach()
    assert len(on) == 0 and on.lookup("bearer", "tok", now=NOW) is None
    stored(on)
    assert len(on) == 0


def test_site_restricted_keys_are_not_cached() -> None:
    """The site's facilities can change; only the database knows them."""
    cache, _, _ = attached()
    stored(cache, who=actor(via="api_key", location_id=3, site_facilities=frozenset({1})))
    assert len(cache) == 0


def test_the_oldest_entry_goes_when_full() -> None:
    cache = CredentialCache(max_age_secs=10, max_entries=2)
    cache.attach(Channel())
    for n in (1, 2, 3):
        stored(cache, f"t{n}", actor(n))
    assert [cache.lookup("bearer", f"t{n}", now=NOW) is not None for n in (1, 2, 3)] == [
        False,
        True,
        True,
    ]


# -- two processes' worth of app on one database and one Redis namespace --------------------


@asynccontextmanager
async def second_process(settings: Settings) -> AsyncIterator[Starlette]:
    """Another server process: its own pools, hub and cache, the same database and Redis."""
    other = create_app(settings)
    async with other.router.lifespan_context(other):
        yield other


def heard_revocation(app: Starlette) -> asyncio.Event:
    """Set once the app's hub has been told of a revocation (after its cache was)."""
    heard = asyncio.Event()
    app.state.realtime.hub.revocation_listeners.append(lambda _user_id: heard.set())
    return heard


async def _me(app: Starlette, token: str, path: str = "/api/auth/user/") -> httpx.Response:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://testserver",
        headers={"Authorization": f"Bearer {token}"},
    ) as client:
        return await client.get(path)


@pytest.fixture
def redis_backend(backend: str) -> None:
    if backend != "postgres":
        pytest.skip("PostgreSQL without Redis has no cross-process revocations: no cache")


async def _logout(admin: httpx.AsyncClient, user: httpx.AsyncClient, token: str) -> str:
    assert (await user.post("/api/auth/logout/")).status_code == 204
    return token


async def _deactivate(admin: httpx.AsyncClient, user: httpx.AsyncClient, token: str) -> str:
    url = f"/api/profiles/{user.user['id']}/"  # type: ignore[attr-defined]
    assert (await admin.patch(url, json={"is_active": False})).status_code == 200
    return token


async def _delete_user(admin: httpx.AsyncClient, user: httpx.AsyncClient, token: str) -> str:
    url = f"/api/profiles/{user.user['id']}/"  # type: ignore[attr-defined]
    assert (await admin.delete(url)).status_code == 204
    return token


ENDINGS = {"logout": _logout, "deactivation": _deactivate, "user deleted": _delete_user}


@pytest.mark.usefixtures("redis_backend")
@pytest.mark.parametrize("ending", [*ENDINGS, "API key deleted"])
async def test_a_credential_ended_on_one_process_is_refused_on_another_at_once(
    settings: Settings, login: Any, ending: str
) -> None:
    admin = await login("admin")
    user = await login("operator")
    credential = user.headers["Authorization"].removeprefix("Bearer ")
    if ending == "API key deleted":
        created = (await user.post("/api/api-keys/", json={"name": "screen"})).json()
        credential = created["key"]
    async with second_process(settings) as other:
        assert (await _me(other, credential)).status_code == 200
        assert len(other.state.credential_cache) == 1  # served from here on
        heard = heard_revocation(other)
        if ending == "API key deleted":
            gone = await user.delete(f"/api/api-keys/{created['id']}/")
            assert gone.status_code == 204, gone.text
        else:
            await ENDINGS[ending](admin, user, credential)
        await asyncio.wait_for(heard.wait(), 10)
        response = await _me(other, credential)
        assert response.status_code == 401, response.text


@pytest.mark.usefixtures("redis_backend")
async def test_a_role_change_on_one_process_is_seen_on_another_at_once(
    settings: Settings, login: Any
) -> None:
    admin = await login("admin")
    user = await login("manager")
    token = user.headers["Authorization"].removeprefix("Bearer ")
    managers_only = "/api/emails/999999/"  # 404 for a manager, 403 below
    async with second_process(settings) as other:
        assert (await _me(other, token, managers_only)).status_code == 404
        heard = heard_revocation(other)
        changed = await admin.patch(f"/api/profiles/{user.user['id']}/", json={"role": "viewer"})
        assert changed.status_code == 200, changed.text
        await asyncio.wait_for(heard.wait(), 10)
        assert (await _me(other, token, managers_only)).status_code == 403


async def _until(condition: Callable[[], bool], timeout: float = 15) -> None:
    """Await a state the server reaches on its own (the pub/sub reader noticing Redis)."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


@pytest.mark.usefixtures("redis_backend")
async def test_without_the_revocation_channel_every_request_asks_the_database(
    settings: Settings, store: Store, make_user: Any, tmp_path: Path
) -> None:
    """Redis down: a change no broadcast carries is seen at once; after the reconnection,
    nothing cached before it is trusted (revocations may have been lost in the gap)."""
    redis = Redis(tmp_path)
    await redis.start()
    try:
        async with second_process(settings.model_copy(update={"redis_url": redis.url})) as app:
            tokens = []
            for _ in range(2):
                user = await make_user("operator")
                issued = await app_token(app, user)
                tokens.append((user, issued))
                assert (await _me(app, issued)).status_code == 200
            assert len(app.state.credential_cache) == 2
            realtime = app.state.realtime
            await redis.stop()
            await _until(lambda: realtime.revocation_epoch() is None)
            await deactivate_in_sql(store, tokens[0][0])
            assert (await _me(app, tokens[0][1])).status_code == 401
            await redis.start()
            await _until(lambda: realtime.revocation_epoch() is not None)
            await deactivate_in_sql(store, tokens[1][0])
            assert (await _me(app, tokens[1][1])).status_code == 401
    finally:
        await redis.stop()


async def app_token(app: Starlette, user: dict[str, Any]) -> str:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as client:
        response = await client.post(
            "/api/auth/token/", json={"username": user["username"], "password": user["password"]}
        )
    assert response.status_code == 200, response.text
    return str(response.json()["access"])


async def deactivate_in_sql(store: Store, user: dict[str, Any]) -> None:
    """A change made outside BMS: no revocation is broadcast."""
    async with store.connection() as conn:
        await conn.execute(users.update().where(users.c.id == user["user"]).values(is_active=False))


async def test_postgresql_without_redis_never_caches(
    backend: str, settings: Settings, login: Any
) -> None:
    """Several processes could share the database with no channel between them."""
    if backend != "postgres":
        pytest.skip("PostgreSQL only")
    user = await login("operator")
    token = user.headers["Authorization"].removeprefix("Bearer ")
    async with second_process(settings.model_copy(update={"redis_url": ""})) as other:
        assert (await _me(other, token)).status_code == 200
        assert len(other.state.credential_cache) == 0


async def test_embedded_mode_caches_and_its_own_revocations_reach_the_cache(
    tmp_path: Path,
) -> None:
    """One process: in-process pub/sub carries every revocation."""
    embedded = load_settings(
        bms_env="test",
        database_url="",
        data_dir=tmp_path,
        secret_key="test-secret-key-" + "x" * 32,
        scheduler_embedded=False,
    )
    assert embedded.embedded
    app = create_app(embedded)
    async with app.router.lifespan_context(app):
        async with app.state.store.unit_of_work(actor_id=None) as uow:
            await create_user(uow, username="solo", password=PASSWORD, role="operator")
        token = await app_token(app, {"username": "solo", "password": PASSWORD})
        assert (await _me(app, token)).status_code == 200
        assert len(app.state.credential_cache) == 1
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://testserver",
            headers={"Authorization": f"Bearer {token}"},
        ) as client:
            assert (await client.post("/api/auth/logout/")).status_code == 204
        assert (await _me(app, token)).status_code == 401
