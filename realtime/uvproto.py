"""Uvicorn's websockets-sansio protocol with lighter per-socket state (`bms serve --ws`).

Uvicorn gives every socket an `asyncio.Queue` (four deques, ~3 KiB even when empty) for
incoming messages and an `asyncio.Event` (one more deque) for write flow control, and
keeps the handshake request and response for the socket's whole life. Idle sockets are
the norm here, so those are replaced by objects that allocate only while someone waits.
Behaviour (ordering, backpressure, cancellation) is the same.

Private API relied on (tests/test_fast_path_contracts.py checks it on a real socket;
FAST_PATHS=0 makes `bms serve` run uvicorn's own "websockets-sansio"): uvicorn's
`WebSocketsSansIOProtocol` keeps incoming messages in `self.queue` (put_nowait, get,
empty, qsize), write flow control in `self.writable` (set, clear, is_set, wait), the
handshake in `request`/`response`, and calls `start_keepalive` once the handshake is done.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol


def _wake(waiters: list[asyncio.Future[None]] | None) -> None:
    for waiter in waiters or ():
        if not waiter.done():
            waiter.set_result(None)


class Flag:
    """`asyncio.Event` for one socket's writability: no deque, a waiter list only when waited."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = True
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        if not self._set:
            self._set = True
            waiters, self._waiters = self._waiters, None
            _wake(waiters)

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> bool:
        if self._set:
            return True
        waiter = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            await waiter
            return True
        finally:
            if self._waiters is not None and waiter in self._waiters:
                self._waiters.remove(waiter)


class Inbox:
    """The `asyncio.Queue` subset uvicorn uses for incoming ASGI messages, allocated lazily."""

    __slots__ = ("_getters", "_items")

    def __init__(self) -> None:
        self._items: list[Any] | None = None
        self._getters: list[asyncio.Future[None]] | None = None

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items) if self._items else 0

    def put_nowait(self, item: Any) -> None:
        if self._items is None:
            self._items = []
        self._items.append(item)
        getters, self._getters = self._getters, None
        _wake(getters)

    async def get(self) -> Any:
        while not self._items:
            getter = asyncio.get_running_loop().create_future()
            if self._getters is None:
                self._getters = []
            self._getters.append(getter)
            try:
                await getter
            finally:
                if self._getters is not None and getter in self._getters:
                    self._getters.remove(getter)
        items = self._items
        item = items.pop(0)
        if not items:
            self._items = None
        return item


class LeanWebSocketsProtocol(WebSocketsSansIOProtocol):
    """What `bms serve` runs for WebSockets: the same protocol, ~4 KiB less per socket."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Duck-typed stand-ins for uvicorn's asyncio.Queue and asyncio.Event (see above).
        self.queue = Inbox()  # type: ignore[assignment]  # same methods uvicorn calls
        self.writable = Flag()  # type: ignore[assignment]  # same methods uvicorn calls

    def start_keepalive(self) -> None:
        """Runs once the handshake response is written: the request/response are done with."""
        super().start_keepalive()
        self.request = self.response = None  # type: ignore[assignment]  # freed, never read again
