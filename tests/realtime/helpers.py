"""Test helpers for realtime: an in-memory socket, event writers, bounded waiting."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import orjson

from bms.settings import Settings
from db.store import Store
from domain.actors import Actor, Role
from realtime.connection import Connection
from realtime.hub import Hub
from realtime.service import Realtime, running_realtime

WAIT_SECS = 10.0


class FakeSocket:
    """A Connection whose frames land in a list; `stuck=True` models a peer that never reads."""

    def __init__(
        self,
        hub: Hub,
        actor: Actor,
        *,
        max_queued: int | None = None,
        stuck: bool = False,
        gate: asyncio.Event | None = None,
    ) -> None:
        self.hub = hub
        self.gate = gate  # while clear, writes wait (a peer whose TCP window is full)
        self.frames: list[dict[str, Any]] = []
        self.close_code: int | None = None
        self.stuck = stuck
        self._changed = asyncio.Event()
        self.conn = Connection(actor, max_queued=max_queued or hub.max_queued)
        self.conn.start(self._send)
        hub.add(self.conn)

    async def _send(self, message: dict[str, Any]) -> None:
        if message["type"] == "websocket.close":
            self.close_code = message["code"]
        else:
            if self.stuck:
                await asyncio.Future()  # never completes: a peer whose TCP window is full
            if self.gate is not None:
                await self.gate.wait()
            self.frames.append(orjson.loads(message["text"]))
        self._changed.set()

    async def wait_for(self, pred: Callable[[], bool], timeout: float = WAIT_SECS) -> None:
        async with asyncio.timeout(timeout):
            while not pred():
                self._changed.clear()
                await self._changed.wait()

    def events(self, topic: str | None = None) -> list[dict[str, Any]]:
        return [f for f in self.frames if f["type"] == "event" and topic in (None, f["topic"])]

    def ids(self, topic: str | None = None) -> list[int]:
        return [f["id"] for f in self.events(topic)]

    async def wait_ids(self, count: int, topic: str | None = None) -> list[int]:
        await self.wait_for(lambda: len(self.ids(topic)) >= count)
        return self.ids(topic)

    async def subscribe(self, topics: list[str], **kwargs: Any) -> None:
        await self.hub.subscribe(self.conn, topics, **kwargs)

    async def close(self) -> None:
        self.hub.remove(self.conn)
        await self.conn.stop()


def actor(user_id: int, role: Role = Role.OPERATOR) -> Actor:
    return Actor(user_id, f"user{user_id}", role)


async def emit(
    store: Store, topic: str = "incident-tickets", count: int = 1, **fields: Any
) -> list[int]:
    """Commit `count` events (one transaction each) and return their ids."""
    ids: list[int] = []
    data = fields.pop("data", None)
    for n in range(count):
        async with store.unit_of_work(actor_id=None) as uow:
            uow.emit(
                topic, "created", object_id=n + 1, data=data or {"id": n + 1, "n": n}, **fields
            )
        ids.extend(e.id for e in uow.committed_events)
    return ids


@asynccontextmanager
async def started(settings: Settings, **options: Any) -> AsyncIterator[Realtime]:
    """One "process": its own Store (pool) and realtime stack on the given settings."""
    store = Store(settings.effective_database_url, pool_max=5, fast_paths=settings.fast_paths)
    await store.connect()
    try:
        async with running_realtime(store, settings.realtime_settings(), **options) as realtime:
            with store.sink.plugged(publish=realtime.on_commit, revoke=realtime.revoke):
                yield realtime
    finally:
        await store.disconnect()
