"""The hub in-process, on PostgreSQL + Redis and on SQLite + memory://."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from bms.settings import Settings
from db.tables import events
from domain.actors import Role
from domain.event_retention import delete_old_events
from realtime import redis_backend
from realtime.connection import CLOSE_GOING_AWAY, CLOSE_TOO_SLOW, CLOSE_UNAUTHORIZED
from realtime.hub import Hub
from realtime.publisher import relay_once
from realtime.service import publish_revocation
from realtime.visibility import EventFilter
from tests.realtime.helpers import FakeSocket, actor, emit, started


async def test_subscriber_gets_committed_events_in_order(rt_settings: Settings) -> None:
    async with started(rt_settings) as rt:
        sock = FakeSocket(rt.hub, actor(1))
        await sock.subscribe(["incident-tickets"])
        ids = await emit(rt.hub.store, count=20)
        await emit(rt.hub.store, topic="shifts", count=2)  # not subscribed
        assert await sock.wait_ids(20) == ids
        subscribed = sock.frames[0]
        assert subscribed["type"] == "subscribed"
        assert subscribed["topics"] == ["incident-tickets"]
        first = sock.events()[0]
        assert set(first) == {"type", "id", "topic", "action", "at", "data"}
        assert first["data"] == {"id": 1, "n": 0}
        await sock.close()


async def test_two_processes_see_each_others_events(rt_settings: Settings, backend: str) -> None:
    if backend != "postgres":
        pytest.skip("memory:// is one process by design")
    async with started(rt_settings) as a, started(rt_settings) as b:
        on_a, on_b = FakeSocket(a.hub, actor(1)), FakeSocket(b.hub, actor(2))
        await on_a.subscribe(["incident-tickets"])
        await on_b.subscribe(["incident-tickets"])
        ids = await emit(b.hub.store, count=5) + await emit(a.hub.store, count=5)
        assert await on_a.wait_ids(10) == ids
        assert await on_b.wait_ids(10) == ids
        await asyncio.sleep(0)
        assert on_a.ids() == ids  # no duplicates arrive later either


async def test_resume_replays_exactly_the_missed_events_while_writing(
    rt_settings: Settings,
) -> None:
    async with started(rt_settings) as rt:
        store = rt.hub.store
        before = await emit(store, count=5)
        missed = await emit(store, count=30)
        writing = asyncio.create_task(emit(store, count=40))
        await asyncio.sleep(0)  # the writer is running while the client resumes
        sock = FakeSocket(rt.hub, actor(1))
        await sock.subscribe(["incident-tickets"], since=before[-1])
        later = await writing
        expected = missed + later
        assert await sock.wait_ids(len(expected)) == expected


async def test_since_zero_replays_everything_retained(rt_settings: Settings) -> None:
    async with started(rt_settings) as rt:
        ids = await emit(rt.hub.store, topic="facilities", count=3)
        sock = FakeSocket(rt.hub, actor(1))
        await sock.subscribe(["facilities"], since=0)
        got = await sock.wait_ids(len(ids))
        assert got[-3:] == ids and got == sorted(set(got))


@contextlib.contextmanager
def unheard(rt: Any) -> Iterator[None]:
    """Commits made meanwhile act as another process's that Redis lost: nothing tells the hub."""
    with rt.hub.store.sink.plugged(publish=None):
        yield


async def test_own_commits_reach_own_sockets_without_redis(rt_settings: Settings) -> None:
    async with started(rt_settings, poll_secs=3600) as rt:
        sock = FakeSocket(rt.hub, actor(1))
        await sock.subscribe(["incident-tickets"])
        with rt.hub.store.sink.plugged(publish=rt.hub.on_commit):  # nothing through Redis
            ids = await emit(rt.hub.store, count=3)
            assert await sock.wait_ids(3) == ids
        assert rt.publisher.published == 0


async def test_id_gap_is_filled_from_the_table(rt_settings: Settings) -> None:
    async with started(rt_settings, poll_secs=3600) as rt:
        store = rt.hub.store
        sock = FakeSocket(rt.hub, actor(1))
        await sock.subscribe(["incident-tickets"])
        with unheard(rt):  # another process's commits, never published
            silent = await emit(store, count=3)
        loud = await emit(store, count=1)
        assert await sock.wait_ids(4) == silent + loud
        assert rt.hub.gap_fills >= 1


async def test_lost_publish_is_delivered_by_catch_up_and_relayed(rt_settings: Settings) -> None:
    async with started(rt_settings, poll_secs=0.05) as rt:
        store = rt.hub.store
        sock = FakeSocket(rt.hub, actor(1))
        await sock.subscribe(["incident-tickets"])
        with unheard(rt):
            ids = await emit(store, count=2)
        assert await sock.wait_ids(2) == ids  # no later event needed to notice
        assert await relay_once(store, rt.publisher, min_age_secs=0) >= 2
        async with store.connection() as conn:
            unpublished = await conn.fetch_val(
                sa.select(sa.func.count()).where(events.c.id.in_(ids), sa.not_(events.c.published))
            )
        assert unpublished == 0
        assert sock.ids() == ids  # the relayed copies were recognised as duplicates


async def test_private_and_owner_only_events(rt_settings: Settings) -> None:
    async with started(rt_settings) as rt:
        store = rt.hub.store
        topics = ["time-off-requests", "time-entries", "notifications", "shifts"]
        owner, other = FakeSocket(rt.hub, actor(1)), FakeSocket(rt.hub, actor(2))
        manager = FakeSocket(rt.hub, actor(3, Role.MANAGER))
        viewer = FakeSocket(rt.hub, actor(4, Role.VIEWER))
        for sock in (owner, other, manager, viewer):
            await sock.subscribe(topics)
        private = await emit(store, "time-off-requests", owner_id=1, private=True)
        entry = await emit(store, "time-entries", owner_id=1, private=True)
        note = await emit(store, "notifications", owner_id=1)
        public = await emit(store, "shifts", count=1)
        assert await owner.wait_ids(4) == private + entry + note + public
        assert await manager.wait_ids(3) == private + entry + public
        assert await other.wait_ids(1) == public
        assert await viewer.wait_ids(1) == public
        # replay applies the same rules
        late = FakeSocket(rt.hub, actor(2))
        await late.subscribe(topics, since=private[0] - 1)
        assert await late.wait_ids(1) == public


async def test_filter_selects_by_data_field(rt_settings: Settings) -> None:
    async with started(rt_settings) as rt:
        store = rt.hub.store
        sock = FakeSocket(rt.hub, actor(1))
        await sock.subscribe(
            ["incident-tickets"], event_filter=EventFilter.parse({"facility": [3, 4]})
        )
        other = await emit(store, data={"id": 1, "facility": 5})
        mine = await emit(store, data={"id": 2, "facility": 3})
        nested = await emit(store, data={"id": 3, "facility": {"id": 4, "name": "x"}})
        async with store.unit_of_work(actor_id=None) as uow:
            uow.emit("incident-tickets", "deleted", object_id=9, data={"id": 9})
        deleted = [e.id for e in uow.committed_events]
        assert await sock.wait_ids(3) == mine + nested + deleted
        assert other[0] not in sock.ids()


@pytest.mark.parametrize("bad", [[1], {"a": {"b": 1}}, {"a": [[1]]}])
def test_bad_filters_are_rejected(bad: object) -> None:
    with pytest.raises(ValueError):
        EventFilter.parse(bad)


async def test_slow_consumer_is_closed_with_4008(rt_settings: Settings) -> None:
    async with started(rt_settings) as rt:
        slow = FakeSocket(rt.hub, actor(1), max_queued=10, stuck=True)
        fine = FakeSocket(rt.hub, actor(2), max_queued=10)
        await slow.subscribe(["shifts"])
        await fine.subscribe(["shifts"])
        ids = await emit(rt.hub.store, "shifts", count=15)
        await slow.wait_for(lambda: slow.close_code is not None)
        assert slow.close_code == CLOSE_TOO_SLOW
        assert slow.conn.queued == 0  # its backlog was dropped
        assert await fine.wait_ids(15) == ids


async def test_resync_required_when_history_was_deleted(rt_settings: Settings) -> None:
    async with started(rt_settings) as rt:
        store = rt.hub.store
        old = await emit(store, "locations", count=3)
        async with store.connection() as conn:
            await conn.execute(
                events.update()
                .where(events.c.id <= old[1])
                .values(created_at=store.clock() - timedelta(days=30))
            )
        deleted = await delete_old_events(store, now=store.clock(), retention_days=7)
        assert deleted >= 2
        sock = FakeSocket(rt.hub, actor(1))
        await sock.subscribe(["locations"], since=old[0] - 1)
        await sock.wait_for(lambda: any(f["type"] == "resync_required" for f in sock.frames))
        live = await emit(store, "locations")
        assert await sock.wait_ids(1) == live  # continues live after resync_required
        kept = FakeSocket(rt.hub, actor(1))
        await kept.subscribe(["locations"], since=old[1])
        assert await kept.wait_ids(2) == [old[2], *live]


async def test_retention_keeps_the_newest_event(rt_settings: Settings) -> None:
    async with started(rt_settings) as rt:
        store = rt.hub.store
        ids = await emit(store, "profiles", count=2)
        far = store.clock() + timedelta(days=365)
        await delete_old_events(store, now=far, retention_days=7)
        async with store.connection() as conn:
            left = [r["id"] for r in await conn.fetch_all(sa.select(events.c.id))]
        assert left == [ids[-1]]


async def test_revocation_closes_the_users_sockets_everywhere(
    rt_settings: Settings, backend: str
) -> None:
    async with started(rt_settings) as a, started(rt_settings) as b:
        here, there, bystander = (
            FakeSocket(a.hub, actor(7)),
            FakeSocket(b.hub, actor(7)),
            FakeSocket(b.hub, actor(8)),
        )
        await publish_revocation(a.hub, 7)
        await here.wait_for(lambda: here.close_code is not None)
        assert here.close_code == CLOSE_UNAUTHORIZED
        if backend == "postgres":  # memory:// does not span two stacks
            await there.wait_for(lambda: there.close_code is not None)
            assert there.close_code == CLOSE_UNAUTHORIZED
        assert bystander.close_code is None


async def test_stop_closes_sockets_with_1001(rt_settings: Settings) -> None:
    async with started(rt_settings) as rt:
        sock = FakeSocket(rt.hub, actor(1))
        hub: Hub = rt.hub
    assert sock.close_code == CLOSE_GOING_AWAY
    assert not hub.connections or sock.conn.close_code == CLOSE_GOING_AWAY


async def test_redis_down_never_fails_or_stalls_a_write(
    rt_settings: Settings, backend: str, unused_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    if backend != "postgres":
        pytest.skip("no Redis in embedded mode")
    monkeypatch.setattr(redis_backend, "_SUBSCRIBE_CONFIRM_SECS", 0.2)  # startup wait
    dead = rt_settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{unused_port}/0"})
    async with started(dead) as rt:
        loop = asyncio.get_running_loop()
        start = loop.time()
        ids = await emit(rt.hub.store, count=3)
        assert loop.time() - start < 1.0
        sock = FakeSocket(rt.hub, actor(1))
        await sock.subscribe(["incident-tickets"], since=ids[0] - 1)
        assert await sock.wait_ids(3) == ids  # this process still serves them from the table
        async with rt.hub.store.connection() as conn:
            flags = await conn.fetch_all(sa.select(events.c.published).where(events.c.id.in_(ids)))
        assert not any(row["published"] for row in flags)  # left for the relay


async def test_idle_socket_holds_no_writer_task_or_queue(rt_settings: Settings) -> None:
    async with started(rt_settings, poll_secs=3600) as rt:
        gate = asyncio.Event()
        gate.set()
        sock = FakeSocket(rt.hub, actor(1), gate=gate)
        await sock.subscribe(["shifts"])
        first = await emit(rt.hub.store, "shifts")
        await sock.wait_ids(1)
        conn = sock.conn

        def writers() -> int:  # this socket's writer tasks alive in the event loop
            tasks = asyncio.all_tasks()
            return sum(t.get_name() == conn.writer_task_name and not t.done() for t in tasks)

        assert writers() == 0  # writes that do not block need no task
        gate.clear()  # the peer stops reading: writes queue behind a writer task
        second = await emit(rt.hub.store, "shifts", count=3)
        async with asyncio.timeout(5):  # queue length has no event to await: poll it
            while conn.queued < 2:  # (the first of the three is being written)
                await asyncio.sleep(0.01)
        assert writers() == 1
        gate.set()
        assert await sock.wait_ids(4) == first + second
        conn.reap_if_idle()  # it sent during this tick: the writer stays
        assert writers() == 1
        conn.reap_if_idle()  # nothing since: the writer goes
        await asyncio.sleep(0)
        assert writers() == 0 and conn.queued == 0
        third = await emit(rt.hub.store, "shifts", count=2)
        assert await sock.wait_ids(6) == first + second + third


async def test_hub_follows_an_events_table_that_was_reset(rt_settings: Settings) -> None:
    async with started(rt_settings, poll_secs=0.05) as rt:
        store = rt.hub.store
        # Local delivery only: a Redis copy published after the response could arrive after
        # the reset below and be taken for a new event.
        with store.sink.plugged(publish=rt.hub.on_commit):
            await emit(store, "shifts", count=2)
        async with store.connection() as conn:  # SQLite then hands out the same ids again
            await conn.execute(events.delete())
        async with asyncio.timeout(5):
            while rt.hub.last_id:  # no event to await: the hub notices on its next tick
                await asyncio.sleep(0.01)
        sock = FakeSocket(rt.hub, actor(1))
        await sock.subscribe(["shifts"])
        ids = await emit(store, "shifts", count=2)
        assert await sock.wait_ids(2) == ids


async def test_sockets_of_revoked_credentials_are_closed_by_the_periodic_check(
    rt_settings: Settings,
) -> None:
    import uuid

    from db.tables import auth_tokens, sessions, users
    from domain.sessions import actor_for_session_key, create_session, hash_key
    from domain.tokens import actor_for_access_token, issue_token_pair
    from domain.users import create_user

    async with started(rt_settings, poll_secs=3600) as rt:
        store, secret, now = rt.hub.store, rt_settings.secret_key, rt.hub.store.clock()
        ids = []
        async with store.unit_of_work(actor_id=None) as uow:
            for role in ("operator", "operator", "manager"):
                name = f"rv{uuid.uuid4().hex[:8]}"
                profile = await create_user(
                    uow, username=name, password="correct-horse-battery-staple", role=role
                )
                ids.append(profile["user"])
            key = await create_session(uow, user_id=ids[0], ttl_secs=600)
            kept_key = await create_session(uow, user_id=ids[2], ttl_secs=600)
            tokens = await issue_token_pair(
                uow, user_id=ids[1], secret_key=secret, access_ttl_secs=600, refresh_ttl_secs=600
            )
            deactivated = await issue_token_pair(
                uow, user_id=ids[2], secret_key=secret, access_ttl_secs=600, refresh_ttl_secs=600
            )
        async with store.connection() as conn:
            by_session = await actor_for_session_key(conn, key=key, now=now)
            by_token = await actor_for_access_token(
                conn, token=tokens["access"], secret_key=secret, now=now
            )
            kept = await actor_for_session_key(conn, key=kept_key, now=now)
            gone_user = await actor_for_access_token(
                conn, token=deactivated["access"], secret_key=secret, now=now
            )
        assert by_session and by_token and kept and gone_user
        socks = [FakeSocket(rt.hub, a) for a in (by_session, by_token, kept, gone_user)]
        assert await rt.hub.close_revoked() == 0
        async with store.connection() as conn:  # ended where no broadcast tells of it
            await conn.execute(sessions.delete().where(sessions.c.key_hash == hash_key(key)))
            await conn.execute(
                auth_tokens.update()
                .where(auth_tokens.c.jti == by_token.credential_id)
                .values(revoked_at=now)
            )
        assert await rt.hub.close_revoked() == 2
        async with store.connection() as conn:
            await conn.execute(users.update().where(users.c.id == ids[2]).values(is_active=False))
        assert await rt.hub.close_revoked() == 2  # both of that user's sockets
        for sock in socks:
            await sock.wait_for(lambda s=sock: s.close_code is not None)
            assert sock.close_code == CLOSE_UNAUTHORIZED


async def test_a_hub_without_sockets_reads_no_gaps_and_a_late_socket_misses_nothing(
    rt_settings: Settings,
) -> None:
    async with started(rt_settings, poll_secs=3600) as rt:
        store = rt.hub.store
        with unheard(rt):  # another process's commits, never published
            silent = await emit(store, count=2)
        loud = await emit(store, count=1)
        async with asyncio.timeout(5):
            while rt.hub.last_id < loud[0]:  # its local delivery runs after the commit
                await asyncio.sleep(0.01)
        assert rt.hub.gap_fills == 0
        sock = FakeSocket(rt.hub, actor(1))
        await sock.subscribe(["incident-tickets"], since=silent[0] - 1)
        assert await sock.wait_ids(3) == silent + loud  # replayed from the table
