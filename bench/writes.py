"""Write concurrency on PostgreSQL: writes/s and p99 with 1, 8, 32 and 128 concurrent writers.

Each writer PATCHes the title of incident tickets of its own (no row-lock waits between
writers), in a closed loop, through `bms serve --workers 2`. Every write emits an event, so
the curve shows how long the events table's ordering lock serialises commits: it should stay
flat or rise up to 32 writers. Never part of the test run.

    .venv/bin/python bench/writes.py [--reuse] [--writers 1 8 32 128] [--duration 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import orjson

from bench.rest import (
    HOST,
    TICKETS,
    Bench,
    Result,
    Scenario,
    free_port,
    inspect,
    load_average,
    login,
    serving_pids,
    start_server,
    stop_server,
    wait_ready,
)
from bench.seed import drop_database, seeded_database


def patch_scenario(writers: int, ids: Sequence[int]) -> Scenario:
    """Request n goes to writer n % writers' own tickets (a stripe of the existing ids)."""
    span = max(1, len(ids) // writers)

    def make(n: int) -> tuple[str, str, bytes]:
        writer, turn = n % writers, n // writers
        ticket = ids[writer * span + turn % span]
        return "PATCH", f"{TICKETS}{ticket}/", orjson.dumps({"title": f"Bench write {n}"})

    return Scenario(f"{writers} writers", "write", make)


async def sweep(bench: Bench, ids: Sequence[int]) -> list[tuple[int, Result]]:
    results = []
    for writers in bench.args.writers:
        bench.args.concurrency = writers
        scenario = patch_scenario(writers, ids)
        await bench.run(scenario, duration=bench.args.warmup, measure=False)
        result = await bench.run(scenario, duration=bench.args.duration)
        print(f"  {writers} writers: {result.rps:,.0f} writes/s", flush=True)
        results.append((writers, result))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--writers", type=int, nargs="*", default=[1, 8, 32, 128])
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--reuse", action="store_true", help="keep/reuse the seeded database")
    args = parser.parse_args()

    url, drop = asyncio.run(seeded_database(args.tickets, reuse=args.reuse))
    process = None
    try:
        port = free_port()
        log = Path(tempfile.mkdtemp(prefix="bms-bench-")) / "server.log"
        process = start_server(url, port, args.workers, log)
        wait_ready(f"http://{HOST}:{port}", process, log)
        seeded = asyncio.run(inspect(url, []))
        pids = serving_pids(process.pid, args.workers)
        bench = Bench(port, login(f"http://{HOST}:{port}"), pids, url, args)
        started_load = load_average()
        results = asyncio.run(sweep(bench, seeded.ids["incident_tickets"]))
    finally:
        if process is not None:
            stop_server(process)
        if drop:
            asyncio.run(drop_database(url))
    print(
        f"\nPATCH title, closed loop, {args.workers} server workers, PostgreSQL, "
        f"{args.duration:g} s a step, {os.cpu_count()} CPUs; load at start {started_load}"
    )
    print(
        f"{'writers':>7} {'writes/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'srv ms':>7} {'db ms':>6} "
        f"{'err':>4}  load 1/5/15"
    )
    for writers, r in results:
        print(
            f"{writers:>7} {r.rps:>8,.0f} {r.percentile(0.5):>7.1f} "
            f"{r.percentile(0.99):>7.1f} {r.server_ms:>7.2f} {r.db_ms:>6.2f} "
            f"{r.errors:>4}  {r.load}"
        )
    print("target (#15): writes/s flat or rising from 1 to 32 writers")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
