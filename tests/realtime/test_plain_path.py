"""FAST_PATHS=0 for sockets: every frame leaves through ASGI `send` in the writer task."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from domain.actors import Actor, Role
from realtime.connection import Connection

ACTOR = Actor(1, "user1", Role.OPERATOR)


async def _written_by(fast_paths: bool) -> tuple[list[str], list[str], Connection]:
    """Queue one frame; return who wrote it at once and after the loop turned."""
    writers: list[str] = []
    done = asyncio.Event()

    async def send(message: dict[str, Any]) -> None:
        task = asyncio.current_task()
        writers.append(task.get_name() if task is not None else "")
        done.set()

    conn = Connection(ACTOR, max_queued=10, fast_paths=fast_paths)
    conn.start(send)
    conn.send_control({"type": "pong"})
    at_once = list(writers)
    await asyncio.wait_for(done.wait(), timeout=5)
    return at_once, writers, conn


@pytest.mark.parametrize("fast_paths", [True, False])
async def test_who_writes_a_frame(fast_paths: bool) -> None:
    at_once, writers, conn = await _written_by(fast_paths)
    await conn.stop()  # the socket is gone: its writer task ends
    if fast_paths:  # realtime/eager.py: written inline by the caller, no task switch
        assert at_once == writers and writers[0] != conn.writer_task_name
    else:  # the plain path: queued, then written by the socket's writer task
        assert at_once == [] and writers == [conn.writer_task_name]
