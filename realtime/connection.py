"""One socket as the hub sees it: subscriptions, live-event holding, and a bounded send queue."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import Any

from starlette.types import Send

from db.types import dumps
from domain.actors import Actor
from realtime import eager, fastsend
from realtime.metrics import WS_CLOSED
from realtime.visibility import EventFilter, can_receive
from realtime.wire import HubEvent

logger = logging.getLogger("bms.realtime.connection")

CLOSE_GOING_AWAY = 1001
CLOSE_UNAUTHORIZED = 4401
CLOSE_TOO_SLOW = 4008
CLOSE_GONE = 1006  # recorded only: the peer vanished, nothing is sent
CLOSE_WAIT_SECS = 10.0


class Subscription:
    """A topic's filter and the id at or below which live events were already covered."""

    __slots__ = ("filter", "floor")

    def __init__(self, event_filter: EventFilter | None, floor: int) -> None:
        self.filter = event_filter
        self.floor = floor


class Connection:
    """Decides per event whether to send it, and queues it without ever blocking the hub.

    Idle sockets hold no task and no queue: the writer task lingers between bursts and is
    reaped by the hub once a socket sent nothing for a tick.
    """

    __slots__ = (
        "_busy",
        "_closer",
        "_fast",
        "_held",
        "_inflight",
        "_out",
        "_pump_task",
        "_raw",
        "_send",
        "_space",
        "_wake",
        "actor",
        "close_code",
        "expiry",
        "max_queued",
        "subs",
    )

    def __init__(self, actor: Actor, *, max_queued: int, fast_paths: bool = True) -> None:
        self.actor = actor
        self.max_queued = max_queued
        # Plain path (FAST_PATHS=0): every frame goes through the writer task's ASGI send.
        self._fast = fast_paths
        self.subs: dict[str, Subscription] = {}
        self.close_code: int | None = None
        self.expiry: asyncio.TimerHandle | None = None  # closes the socket when the credential ends
        self._out: deque[str] | None = None
        self._held: list[HubEvent] | None = None
        self._space: asyncio.Event | None = None
        self._pump_task: asyncio.Task[None] | None = None
        self._closer: asyncio.Task[None] | None = None
        self._send: Send | None = None
        self._raw: Any | None = None  # uvicorn protocol for prebuilt frames (fastsend)
        self._wake: asyncio.Future[None] | None = None
        self._inflight: eager.Started | None = None
        self._busy = False

    # -- deciding -------------------------------------------------------------------------

    def accepts(self, event: HubEvent, *, replayed: bool = False) -> bool:
        """Subscribed topic, newer than what the subscription covered, visible, filter passes."""
        sub = self.subs.get(event.topic)
        if sub is None or (event.id <= sub.floor and not replayed):
            return False
        if not can_receive(self.actor, event):
            return False
        return sub.filter is None or sub.filter.matches(event)

    def offer(self, event: HubEvent) -> None:
        """Called by the hub for each live event of a subscribed topic, in id order."""
        if self.close_code is not None:
            return
        if self._held is not None:  # a replay is running: keep order, decide at release
            if len(self._held) >= self.max_queued:
                self.request_close(CLOSE_TOO_SLOW, "too far behind")
                return
            self._held.append(event)
            return
        if self.accepts(event):
            self._push(event.frame, event)

    def hold(self) -> None:
        """Buffer live events while history is replayed."""
        if self._held is None:
            self._held = []

    def release(self) -> None:
        """Stop holding; send what was held, skipping ids the replay already covered."""
        held, self._held = self._held, None
        for event in held or ():
            self.offer(event)

    # -- queueing -------------------------------------------------------------------------

    @property
    def queued(self) -> int:
        return (len(self._out) if self._out is not None else 0) + (self._inflight is not None)

    def send_control(self, message: dict[str, Any]) -> None:
        """Queue a non-event frame (welcome, subscribed, pong, error ...)."""
        self._push(dumps(message).decode())

    def _push(self, frame: str, event: HubEvent | None = None) -> None:
        if self.close_code is not None:
            return
        self._busy = True
        out = self._out
        writer_idle = self._pump_task is None or self._wake is not None
        if (
            out is None
            and self._inflight is None
            and self._send is not None
            and writer_idle
            and self._fast
        ):
            # nothing queued or being written: write now, without a task
            if (
                event is not None
                and self._raw is not None
                and fastsend.try_write(self._raw, event.wire)
            ):
                return
            self._write_now(frame)
            return
        if out is None:
            out = self._out = deque()
        elif len(out) >= self.max_queued:
            self.request_close(CLOSE_TOO_SLOW, "too far behind")
            return
        out.append(frame)
        self._kick()

    def _write_now(self, frame: str) -> None:
        """Write inline; if the transport is paused, the writer task finishes this write."""
        assert self._send is not None
        try:
            message = {"type": "websocket.send", "text": frame}
            sending = self._send(message)  # uvicorn's send is a coroutine function (eager.py)
            self._inflight = eager.start(sending)  # type: ignore[arg-type]  # typed Awaitable
        except Exception as exc:
            self._gone(exc)
            return
        if self._inflight is not None:
            self._kick()

    def _kick(self) -> None:
        """Make sure a writer task will look at the queue."""
        if (wake := self._wake) is not None and not wake.done():
            self._wake = None
            wake.set_result(None)
        elif self._pump_task is None and self._send is not None:
            self._pump_task = asyncio.create_task(self._pump(), name=self.writer_task_name)

    async def push_replayed(self, event: HubEvent) -> None:
        """Queue a replayed event, waiting for room instead of closing (we set the pace)."""
        while self.close_code is None and self.queued >= self.max_queued:
            if self._space is None:
                self._space = asyncio.Event()
            self._space.clear()
            await self._space.wait()
        if self.close_code is None and self.accepts(event, replayed=True):
            self._push(event.frame)

    # -- sending and closing --------------------------------------------------------------

    @property
    def writer_task_name(self) -> str:
        """The name of this socket's writer task while it has one (seen in task dumps)."""
        return f"bms-ws-writer-{id(self):x}"

    def start(self, send: Send) -> None:
        """Attach the socket's ASGI `send`; the writer task starts with the first frame."""
        self._send = send
        self._raw = fastsend.raw_protocol(send) if self._fast else None
        if self._out:
            self._pump_task = asyncio.create_task(self._pump(), name=self.writer_task_name)

    async def _pump(self) -> None:
        """Finish a suspended write, drain the queue, then wait (cheaper than a new task)."""
        send = self._send
        assert send is not None
        loop = asyncio.get_running_loop()
        try:
            while True:
                inflight, self._inflight = self._inflight, None
                if inflight is not None:
                    await eager.finish(inflight)
                out = self._out
                while out:
                    await send({"type": "websocket.send", "text": out.popleft()})
                    space = self._space
                    if space is not None and len(out) < self.max_queued // 2:
                        space.set()
                self._out = None
                if self._inflight is not None:
                    continue
                self._wake = loop.create_future()
                await self._wake
        except Exception as exc:  # the peer went away; the reader sees the disconnect
            self._gone(exc)
        finally:
            if self._pump_task is asyncio.current_task():
                self._pump_task = None
                self._wake = None

    def _gone(self, exc: BaseException) -> None:
        logger.debug("send failed: %r", exc)
        self.close_code = CLOSE_GONE
        self._out = None
        if self._space is not None:
            self._space.set()  # a replay waiting for room must not wait forever

    def reap_if_idle(self) -> None:
        """Called periodically: end the writer task of a socket that sent nothing lately."""
        pump = self._pump_task
        idle = self._wake is not None and not self._out and self._inflight is None
        if not self._busy and pump is not None and idle:
            self._pump_task = self._wake = None  # a new frame starts a new writer
            pump.cancel()
        self._busy = False

    def request_close(self, code: int, reason: str = "") -> None:
        """Close the socket with `code` even if a send is stuck on a slow peer."""
        if self.close_code is not None:
            return
        self.close_code = code
        WS_CLOSED.labels(str(code)).inc()
        self._out = None
        self._held = None
        if self._inflight is not None:
            self._inflight[0].close()
            self._inflight = None
        if self._space is not None:
            self._space.set()
        pump, self._pump_task = self._pump_task, None
        self._wake = None
        if pump is not None:
            pump.cancel()
        if self._send is not None:
            self._closer = asyncio.create_task(self._close_after(pump, code, reason))

    async def _close_after(self, pump: asyncio.Task[None] | None, code: int, reason: str) -> None:
        if pump is not None:
            with contextlib.suppress(BaseException):
                await pump
        assert self._send is not None
        try:
            await self._send({"type": "websocket.close", "code": code, "reason": reason})
        except Exception as exc:  # the peer is gone already
            logger.debug("close %s failed: %r", code, exc)

    async def stop(self) -> None:
        """Stop the writer (the socket is gone or closing); wait briefly for a pending close."""
        if self.close_code is None:
            self.close_code = CLOSE_GONE
        pump, self._pump_task = self._pump_task, None
        if pump is not None:
            pump.cancel()
            with contextlib.suppress(BaseException):
                await pump
        if self._closer is not None:
            with contextlib.suppress(BaseException):
                async with asyncio.timeout(CLOSE_WAIT_SECS):
                    await self._closer
