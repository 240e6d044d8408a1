"""CPU-heavy work (argon2, recurrence rules) runs on a small thread pool, never on the event
loop: one slow computation must not stall every socket and request of the process."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import FrameType
from typing import Any, TypeVar

T = TypeVar("T")

# Two small pools, so a login flood (argon2) never delays a rule check or an image: each
# queues behind its own kind only. Bounded: a burst waits here (and the login throttle
# refuses what queues too long) instead of taking every core from the event loop; argon2
# gets half the cores at most (one on a 2-core machine: ~0.1-0.2 s of CPU per check).
PASSWORD_THREADS = max(1, (os.cpu_count() or 2) // 2)
OTHER_THREADS = 2


class BudgetExceeded(Exception):
    """A computation used up its CPU-time budget and was stopped."""


# Pool threads run at a lower priority than the event loop: when both want the CPU (a login
# flood on a busy machine), the loop answers requests and sockets first.
POOL_NICENESS = 10


def _lower_priority() -> None:
    """Linux gives each thread its own nice value; elsewhere this is a no-op."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), POOL_NICENESS)


@functools.cache
def _executor(kind: str) -> ThreadPoolExecutor:
    size = PASSWORD_THREADS if kind == "passwords" else OTHER_THREADS
    return ThreadPoolExecutor(
        max_workers=size, thread_name_prefix=f"bms-{kind}", initializer=_lower_priority
    )


async def run_cpu(fn: Callable[..., T], *args: Any, pool: str = "other") -> T:
    """Run `fn(*args)` on a CPU pool ("passwords" or "other") and await its result."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_executor(pool), functools.partial(fn, *args))


def within_budget(fn: Callable[[], T], *, cpu_secs: float) -> T:
    """Call `fn` in this thread, raising BudgetExceeded once it used `cpu_secs` of CPU time.

    For pure-Python code that may loop for a long time without returning (dateutil's rrule
    scans up to year 9999 for a rule that never matches): a profile hook checks the clock
    on every function call and stops the computation from inside.
    """
    deadline = time.thread_time() + cpu_secs

    def check(frame: FrameType, event: str, arg: Any) -> None:
        if event == "call" and time.thread_time() > deadline:
            raise BudgetExceeded()

    previous = sys.getprofile()
    sys.setprofile(check)
    try:
        return fn()
    finally:
        sys.setprofile(previous)
