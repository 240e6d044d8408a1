"""Run a coroutine inline until it first suspends: most socket writes never do.

Fan-out calls the ASGI `send` of hundreds of sockets per event. Uvicorn's `send` only
suspends when the transport is paused (a slow peer), so starting it inline and handing
it to a task only if it suspends saves a task switch per delivery (what Python 3.12's
eager tasks do).

Private API relied on (tests/test_fast_path_contracts.py; FAST_PATHS=0 leaves every
write to the socket's writer task): the Task/Future handshake, i.e. a coroutine yields
the future it awaits and `finish` clears its `_asyncio_future_blocking` as a Task does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

Started = tuple[Coroutine[Any, Any, Any], Any]


def start(coro: Coroutine[Any, Any, Any]) -> Started | None:
    """Step `coro` once; None if it finished, else (coro, what it awaits). Errors propagate."""
    try:
        awaited = coro.send(None)
    except StopIteration:
        return None
    return coro, awaited


async def finish(started: Started) -> None:
    """Drive a coroutine that `start` left suspended to completion, inside the current task."""
    coro, awaited = started
    try:
        while True:
            if awaited is None:  # a bare `yield`: just give the loop a turn
                await asyncio.sleep(0)
            else:
                # What a Task does with a yielded future: take it over, then wait for it.
                awaited._asyncio_future_blocking = False
                try:
                    await awaited
                except asyncio.CancelledError:
                    if asyncio.current_task().cancelling():  # type: ignore[union-attr]  # in a task
                        coro.close()
                        raise
                except BaseException:  # noqa: S110 - the coroutine sees the outcome itself
                    pass
            awaited = coro.send(None)
    except StopIteration:
        return
