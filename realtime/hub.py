"""The per-process hub: one broadcaster subscription, events in id order, fan-out to sockets."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import orjson
from broadcaster import Broadcast

from db.effects import CommittedEvent
from db.store import Store
from realtime import history, revalidate
from realtime.connection import (
    CLOSE_GOING_AWAY,
    CLOSE_UNAUTHORIZED,
    Connection,
    Subscription,
)
from realtime.visibility import EventFilter
from realtime.wire import HubEvent, decode

logger = logging.getLogger("bms.realtime.hub")

POLL_SECS = 1.0  # catch-up read of the events table: covers pub/sub messages Redis dropped
STOP_TIMEOUT_SECS = 5.0
REVALIDATE_SECS = 30.0  # how stale a revoked credential's socket may get without a broadcast
FANOUT_SLICE = 64  # sockets served between two turns of the event loop (~1 ms)


def events_channel(namespace: str) -> str:
    return f"{namespace}:events"


def control_channel(namespace: str) -> str:
    return f"{namespace}:control"


def revocation_message(user_id: int, credential_id: str | None) -> str:
    """The control message that ends a user's credential (or all of them) everywhere."""
    message = {"type": "revoke", "user_id": user_id, "credential_id": credential_id}
    return orjson.dumps(message).decode()


class Hub:
    """Delivers every committed event exactly once, in id order, to the interested sockets."""

    def __init__(
        self,
        store: Store,
        broadcast: Broadcast,
        *,
        namespace: str,
        max_queued: int,
        poll_secs: float = POLL_SECS,
        revalidate_secs: float = REVALIDATE_SECS,
        fast_paths: bool = True,
    ) -> None:
        self.store = store
        self.broadcast = broadcast
        self.namespace = namespace
        self.max_queued = max_queued
        # FAST_PATHS: sockets write inline (realtime/eager.py) and prebuilt frames straight
        # to uvicorn's transport (realtime/fastsend.py); off: every write through ASGI send.
        self.fast_paths = fast_paths
        self.poll_secs = poll_secs
        self.revalidate_secs = revalidate_secs
        self.last_id = 0
        self.gap_fills = 0
        self.connections: set[Connection] = set()
        self._by_topic: dict[str, set[Connection]] = {}
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._local: set[asyncio.Task[None]] = set()  # running `on_commit` deliveries
        # Told of every revocation, here and from other processes (api/auth/credential_cache).
        self.revocation_listeners: list[Callable[[int], None]] = []

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Subscribe first, then read the newest id: nothing committed after it is missed."""
        ready = [asyncio.Event(), asyncio.Event()]
        self._tasks = [
            asyncio.create_task(self._listen(events_channel(self.namespace), ready[0])),
            asyncio.create_task(self._listen(control_channel(self.namespace), ready[1])),
        ]
        for task, event in zip(self._tasks, ready, strict=True):
            waiter = asyncio.create_task(event.wait())
            await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            if task.done():
                task.result()  # raise the reason the subscription failed
        self.last_id = await history.newest_id(self.store)
        self._tasks.append(asyncio.create_task(self._poll_forever()))

    async def stop(self) -> None:
        """Close every socket with 1001 (going away), then stop listening."""
        conns = list(self.connections)
        for conn in conns:
            conn.request_close(CLOSE_GOING_AWAY, "server shutting down")
        if conns:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(STOP_TIMEOUT_SECS):
                    await asyncio.gather(*(c.stop() for c in conns), return_exceptions=True)
        tasks = [*self._tasks, *self._local]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        self._tasks = []

    async def _listen(self, channel: str, ready: asyncio.Event) -> None:
        """Read one broadcaster channel forever; a bad message is logged, never fatal."""
        async with self.broadcast.subscribe(channel) as subscriber:
            ready.set()
            while True:
                message = (await subscriber.get()).message
                try:
                    if channel.endswith(":control"):
                        self._on_control(message)
                    else:
                        await self.advance(decode(message))
                except Exception:
                    logger.exception("bad realtime message on %s", channel)

    async def _poll_forever(self) -> None:
        """Every tick: read what pub/sub may have lost, free idle sockets' writer tasks, and
        now and then re-check every socket's credentials."""
        loop = asyncio.get_running_loop()
        next_check = loop.time() + self.revalidate_secs
        while True:
            await asyncio.sleep(self.poll_secs)
            try:
                await self.catch_up()
            except Exception as exc:
                logger.warning("realtime catch-up read failed: %r", exc)
            for conn in tuple(self.connections):
                conn.reap_if_idle()
            if loop.time() >= next_check:
                next_check = loop.time() + self.revalidate_secs
                try:
                    await self.close_revoked()
                except Exception as exc:
                    logger.warning("realtime credential check failed: %r", exc)

    async def close_revoked(self) -> int:
        """Close (4401) sockets whose session/token was revoked, whose user was deactivated or
        whose user's role changed."""
        conns = [
            c for c in self.connections if c.close_code is None and revalidate.is_checked(c.actor)
        ]
        if not conns:
            return 0
        live = await revalidate.live_credentials(
            self.store, (c.actor for c in conns), now=self.store.clock()
        )
        closed = 0
        for conn in conns:
            role = live.get((conn.actor.via, conn.actor.credential_id or ""))
            if role != conn.actor.role.value:  # revoked, or the role changed since it opened
                conn.request_close(CLOSE_UNAUTHORIZED, "credentials revoked")
                closed += 1
        return closed

    # -- ordering -------------------------------------------------------------------------

    async def on_commit(self, committed: Sequence[CommittedEvent]) -> None:
        """Commit listener: this process's own events go to its sockets without the Redis
        round trip. The copy that comes back through Redis is then a duplicate and dropped;
        an id committed meanwhile by another process is read from the table (`advance`)."""
        events = [HubEvent.from_committed(event) for event in committed]
        task = asyncio.create_task(self._advance_all(events))
        self._local.add(task)
        task.add_done_callback(self._local.discard)

    async def _advance_all(self, events: Sequence[HubEvent]) -> None:
        try:
            for event in events:
                await self.advance(event)
        except Exception:
            logger.exception("local delivery failed; the poll delivers it")

    async def advance(self, event: HubEvent) -> None:
        """Deliver `event` after any missing lower ids (read from the table); drop duplicates."""
        if event.id <= self.last_id:
            return
        async with self._lock:
            if event.id <= self.last_id:
                return
            # With no socket open, nobody can miss the lower ids: skip reading them. (A socket
            # that opens later replays from the table with `since`, or starts from now.)
            while event.id > self.last_id + 1 and self.connections:
                missing = await history.events_between(
                    self.store, after=self.last_id, upto=event.id - 1
                )
                if not missing:
                    break  # ids lost to rolled-back transactions
                self.gap_fills += 1
                for old in missing:
                    await self._deliver(old)
            await self._deliver(event)

    async def catch_up(self) -> None:
        """Deliver committed events newer than the last delivered one (lost pub/sub messages)."""
        async with self._lock:
            while True:
                newer = await history.events_between(self.store, after=self.last_id)
                for event in newer:
                    await self._deliver(event)
                if not newer:
                    await self._notice_reset()
                if len(newer) < history.PAGE:
                    return

    async def _notice_reset(self) -> None:
        """Ids only grow (retention keeps the newest row); if they shrank, the table was reset."""
        newest = await history.newest_id(self.store)
        if newest < self.last_id:
            logger.warning("events table went back from id %s to %s", self.last_id, newest)
            self.last_id = newest

    async def _deliver(self, event: HubEvent) -> None:
        """Offer to every socket on the topic, yielding to the loop between slices.

        A long synchronous fan-out would stall this process's open transactions, and the
        events advisory lock they hold would stall every writer on every process.
        """
        self.last_id = event.id
        conns = tuple(self._by_topic.get(event.topic, ()))
        for start in range(0, len(conns), FANOUT_SLICE):
            if start:
                await asyncio.sleep(0)
            for conn in conns[start : start + FANOUT_SLICE]:
                conn.offer(event)

    # -- connections ----------------------------------------------------------------------

    def add(self, conn: Connection) -> None:
        self.connections.add(conn)

    def remove(self, conn: Connection) -> None:
        self.connections.discard(conn)
        for topic in conn.subs:
            self._index(conn, topic, add=False)

    def _index(self, conn: Connection, topic: str, *, add: bool) -> None:
        conns = self._by_topic.setdefault(topic, set())
        if add:
            conns.add(conn)
        else:
            conns.discard(conn)
            if not conns:
                del self._by_topic[topic]

    async def subscribe(
        self,
        conn: Connection,
        topics: list[str],
        *,
        since: int | None = None,
        event_filter: EventFilter | None = None,
    ) -> None:
        """Register live first, then replay (since, last delivered], then release held events."""
        upto = self.last_id
        floor = upto if since is None else max(upto, since)
        if since is not None:
            conn.hold()
        try:
            for topic in topics:
                conn.subs[topic] = Subscription(event_filter, floor)
                self._index(conn, topic, add=True)
            conn.send_control({"type": "subscribed", "topics": topics, "last_event_id": upto})
            if since is None or since >= upto:
                return
            if await self._history_lost(since):
                conn.send_control({"type": "resync_required", "topics": topics})
                return
            await self._replay(conn, topics, since, upto)
        finally:
            conn.release()

    async def _history_lost(self, since: int) -> bool:
        """True when retention deleted events after `since` (`since: 0` means "what is kept"),
        or when `since` predates a restore: that id belongs to the data the restore replaced."""
        if since <= 0:
            return False
        oldest = await history.oldest_id(self.store)
        if oldest is not None and since < oldest - 1:
            return True
        restored = await history.newest_restore_id(self.store)
        return restored is not None and since < restored

    async def _replay(self, conn: Connection, topics: Iterable[str], since: int, upto: int) -> None:
        after = since
        while conn.close_code is None:
            page = await history.events_between(self.store, after=after, upto=upto, topics=topics)
            for event in page:
                await conn.push_replayed(event)
            if len(page) < history.PAGE:
                return
            after = page[-1].id

    def unsubscribe(self, conn: Connection, topics: Iterable[str]) -> None:
        for topic in topics:
            if conn.subs.pop(topic, None) is not None:
                self._index(conn, topic, add=False)

    # -- control --------------------------------------------------------------------------

    def _on_control(self, message: str) -> None:
        data: Any = orjson.loads(message)
        if data.get("type") == "revoke":
            self.credentials_ended(int(data["user_id"]), credential_id=data.get("credential_id"))

    def credentials_ended(self, user_id: int, *, credential_id: str | None = None) -> None:
        """A credential of this user ended (or their role changed): tell the listeners, then
        close the sockets opened with it."""
        for listener in self.revocation_listeners:
            listener(user_id)
        self.close_user(user_id, credential_id=credential_id)

    def close_user(self, user_id: int, *, credential_id: str | None = None) -> int:
        """Close (4401) the sockets of a user, or only those opened with one credential."""
        closed = 0
        for conn in tuple(self.connections):
            actor = conn.actor
            if actor.id == user_id and credential_id in (None, actor.credential_id):
                conn.request_close(CLOSE_UNAUTHORIZED, "credentials revoked")
                closed += 1
        return closed

    async def publish_revocation(self, user_id: int, *, credential_id: str | None = None) -> None:
        """Close the user's sockets here now, and on every other process through the broadcaster."""
        self.credentials_ended(user_id, credential_id=credential_id)
        try:
            async with asyncio.timeout(2):
                await self.broadcast.publish(
                    control_channel(self.namespace), revocation_message(user_id, credential_id)
                )
        except Exception as exc:
            logger.warning("revocation for user %s not broadcast: %r", user_id, exc)
