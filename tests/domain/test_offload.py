"""Pure-Python work runs in a process of its own: it cannot hold this process's GIL (#10)."""

from __future__ import annotations

import os
import signal

from domain import offload


async def test_isolated_work_runs_in_another_process() -> None:
    assert await offload.run_isolated(os.getpid) != os.getpid()


async def test_a_killed_worker_process_is_replaced() -> None:
    worker = await offload.run_isolated(os.getpid)
    os.kill(worker, signal.SIGKILL)
    replacement = await offload.run_isolated(os.getpid)
    assert replacement not in (worker, os.getpid())


async def test_errors_cross_the_process_boundary() -> None:
    try:
        await offload.run_isolated(int, "not a number")
    except ValueError as exc:
        assert "not a number" in str(exc)
    else:
        raise AssertionError("the worker's ValueError did not reach the caller")
