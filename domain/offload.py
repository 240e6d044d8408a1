"""CPU-heavy work (argon2, images, recurrence rules) never runs on the event loop: one slow
computation must not stall every socket and request of the process.

Work that releases the GIL (argon2 and Pillow are C) runs on small thread pools. Pure-Python
work (dateutil's rule expansion) holds the GIL: on a thread it would still delay the loop,
which waits up to `sys.getswitchinterval()` (5 ms) for the GIL after every wake-up, so a
burst of such rules made each request's round trips slower by that much (#10: WebSocket
delivery p99 190 ms during RRULE bursts). It runs in a separate process instead
(`run_isolated`), started on first use.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from types import FrameType
from typing import Any, TypeVar

T = TypeVar("T")

# Two small pools, so a login flood (argon2) never delays a rule check or an image: each
# queues behind its own kind only. Bounded: a burst waits here (and the login throttle
# refuses what queues too long) instead of taking every core from the event loop; argon2
# gets half the cores at most (one on a 2-core machine: ~0.1-0.2 s of CPU per check).
PASSWORD_THREADS = max(1, (os.cpu_count() or 2) // 2)
OTHER_THREADS = 2
# One process for pure-Python work: requests that need it are rare (a recurring shift or
# event), and one process bounds what a burst of pathological rules can take: one core.
ISOLATED_PROCESSES = 1


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
    """Run `fn(*args)` on a CPU thread pool ("passwords" or "other") and await its result.

    For C code that releases the GIL; pure-Python work belongs in `run_isolated`.
    """
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_executor(pool), functools.partial(fn, *args))


PARENT_CHECK_SECS = 1.0


def _prepare_worker_process(parent_pid: int) -> None:
    """Lower the worker's priority, and end it when the server dies without shutting it
    down (SIGKILL): its task queue would keep an orphan waiting forever."""
    _lower_priority()

    def watch_parent() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_CHECK_SECS)
        os._exit(0)

    threading.Thread(target=watch_parent, name="bms-parent-watch", daemon=True).start()


@functools.cache
def _process_pool() -> ProcessPoolExecutor:
    # spawn, not fork: forking a process that runs threads (the pools above, database
    # drivers) can copy a lock another thread holds and deadlock the child.
    return ProcessPoolExecutor(
        max_workers=ISOLATED_PROCESSES,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_prepare_worker_process,
        initargs=(os.getpid(),),
    )


async def run_isolated(fn: Callable[..., T], *args: Any) -> T:
    """Run `fn(*args)` in the pure-Python worker process and await its result.

    `fn`, its arguments, result and exceptions cross a process boundary: module-level
    functions and picklable values only. A worker that died (killed, out of memory) is
    replaced once; the call is retried on the new one.
    """
    loop = asyncio.get_running_loop()
    call = functools.partial(fn, *args)
    pool = _process_pool()
    try:
        return await loop.run_in_executor(pool, call)
    except BrokenProcessPool:
        if _process_pool() is pool:  # not yet replaced by a concurrent caller
            _process_pool.cache_clear()
        return await loop.run_in_executor(_process_pool(), call)


def start_isolated(*modules: str) -> None:
    """Start the worker process now, in the background, and import `modules` there: the
    first `run_isolated` call then finds it ready instead of waiting about a second."""
    _process_pool().submit(_import_modules, modules)


def _import_modules(names: tuple[str, ...]) -> None:
    for name in names:
        importlib.import_module(name)


def shutdown_isolated() -> None:
    """Stop the worker process, if one was started (server shutdown, tests)."""
    if _process_pool.cache_info().currsize:
        _process_pool().shutdown(wait=True, cancel_futures=True)
        _process_pool.cache_clear()


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
