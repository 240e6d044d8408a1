"""The lean stand-ins for uvicorn's per-socket Queue and Event behave like the originals."""

from __future__ import annotations

import asyncio

import pytest

from realtime.uvproto import Flag, Inbox


async def test_inbox_fifo_and_wakes_waiter() -> None:
    inbox = Inbox()
    assert inbox.empty()
    inbox.put_nowait(1)
    inbox.put_nowait(2)
    assert inbox.qsize() == 2
    assert await inbox.get() == 1
    assert await inbox.get() == 2
    assert inbox.empty()
    getter = asyncio.create_task(inbox.get())
    await asyncio.sleep(0)
    assert not getter.done()
    inbox.put_nowait(3)
    assert await getter == 3


async def test_inbox_cancelled_get_keeps_item_for_next() -> None:
    inbox = Inbox()
    getter = asyncio.create_task(inbox.get())
    await asyncio.sleep(0)
    getter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await getter
    inbox.put_nowait("x")
    assert await asyncio.wait_for(inbox.get(), 1) == "x"


async def test_flag_blocks_while_cleared_and_cancel_leaves_others_waiting() -> None:
    flag = Flag()
    assert flag.is_set()
    assert await flag.wait()
    flag.clear()
    first = asyncio.create_task(flag.wait())
    second = asyncio.create_task(flag.wait())
    await asyncio.sleep(0)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert not second.done()
    flag.set()
    assert await asyncio.wait_for(second, 1)
