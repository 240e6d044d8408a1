"""realtime.eager: inline start, finishing a suspended coroutine in a task, cancellation."""

from __future__ import annotations

import asyncio

import pytest

from realtime import eager


async def _write(gate: asyncio.Event, log: list[str], item: str) -> None:
    await gate.wait()
    log.append(item)


async def test_a_coroutine_that_does_not_suspend_finishes_inline() -> None:
    gate, log = asyncio.Event(), []
    gate.set()
    assert eager.start(_write(gate, log, "a")) is None
    assert log == ["a"]


async def test_a_suspended_coroutine_is_finished_by_a_task() -> None:
    gate, log = asyncio.Event(), []
    started = eager.start(_write(gate, log, "a"))
    assert started is not None and log == []
    task = asyncio.create_task(eager.finish(started))
    await asyncio.sleep(0)
    gate.set()
    async with asyncio.timeout(5):
        await task
    assert log == ["a"]


async def test_cancelling_the_finisher_closes_the_coroutine() -> None:
    gate, log = asyncio.Event(), []
    started = eager.start(_write(gate, log, "a"))
    assert started is not None
    task = asyncio.create_task(eager.finish(started))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    gate.set()
    await asyncio.sleep(0)
    assert log == []


async def test_errors_raised_inside_reach_the_finisher() -> None:
    gate = asyncio.Event()

    async def failing() -> None:
        await gate.wait()
        raise OSError("peer gone")

    started = eager.start(failing())
    assert started is not None
    task = asyncio.create_task(eager.finish(started))
    gate.set()
    with pytest.raises(OSError, match="peer gone"):
        async with asyncio.timeout(5):
            await task
