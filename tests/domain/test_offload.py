"""Pure-Python work runs in a process of its own: it cannot hold this process's GIL (#10)."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from domain import offload


async def test_isolated_work_runs_in_another_process() -> None:
    assert await offload.run_isolated(os.getpid) != os.getpid()


async def test_a_killed_worker_process_is_replaced() -> None:
    worker = await offload.run_isolated(os.getpid)
    os.kill(worker, signal.SIGKILL)
    replacement = await offload.run_isolated(os.getpid)
    assert replacement not in (worker, os.getpid())


async def test_callers_that_find_the_worker_dead_together_share_its_replacement() -> None:
    worker = await offload.run_isolated(os.getpid)
    os.kill(worker, signal.SIGKILL)
    replacements = await asyncio.gather(*(offload.run_isolated(os.getpid) for _ in range(3)))
    assert len(set(replacements)) == 1 and worker not in replacements
    assert len(multiprocessing.active_children()) == offload.ISOLATED_PROCESSES


async def test_errors_cross_the_process_boundary() -> None:
    try:
        await offload.run_isolated(int, "not a number")
    except ValueError as exc:
        assert "not a number" in str(exc)
    else:
        raise AssertionError("the worker's ValueError did not reach the caller")


def test_the_worker_process_ends_with_a_killed_server() -> None:
    """SIGKILL leaves no shutdown to run: the worker notices its parent is gone and exits."""
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert server.stdout is not None
        worker = int(server.stdout.readline())
    finally:
        server.kill()
        server.wait()
    deadline = time.monotonic() + 10 * offload.PARENT_CHECK_SECS
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(worker), f"worker process {worker} outlived its server"


SERVER = """
import asyncio, os, time
from domain import offload
print(asyncio.run(offload.run_isolated(os.getpid)), flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    """Running (an exited process waiting to be reaped by init counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"
