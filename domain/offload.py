"""CPU-heavy work (argon2, recurrence rules) runs on a small thread pool, never on the event
loop: one slow computation must not stall every socket and request of the process."""

from __future__ import annotations

import asyncio
import functools
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import FrameType
from typing import Any, TypeVar

T = TypeVar("T")

# Bounded: a burst of logins queues here instead of taking every core from the event loop.
CPU_THREADS = 2


class BudgetExceeded(Exception):
    """A computation used up its CPU-time budget and was stopped."""


@functools.cache
def _executor() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=CPU_THREADS, thread_name_prefix="bms-cpu")


async def run_cpu(fn: Callable[..., T], *args: Any) -> T:
    """Run `fn(*args)` on the CPU pool and await its result."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_executor(), functools.partial(fn, *args))


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
