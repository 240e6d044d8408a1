"""Paired comparison of two source trees: is a change faster, on a machine whose speed drifts?

On a shared machine the same code's CPU per request drifts by a third within minutes, so two
full `bench/rest.py` runs a few minutes apart do not compare (docs/scaling.md). Here two
`bms serve` processes (one worker each), one per tree, run side by side on the same seeded
database; batches of requests alternate between them, round after round, and each batch's
server CPU per request is read from /proc. The median of the rounds is compared. Run it
with the same tree on both sides first: that ratio is the noise to beat.

    git worktree add /tmp/before <rev>     # or: git archive <rev> | tar -x -C /tmp/before
    .venv/bin/python bench/paired.py --before /tmp/before
    .venv/bin/python bench/paired.py --before . --after .   # A/A: the noise
    .venv/bin/python bench/paired.py --before /tmp/before --shapes detail create --rounds 16

A tree whose newest migration is older than this one's serves a twin of the seeded
database, migrated down to that migration (`bench.seed.twin_database`); the twin is
dropped at the end. Never part of the test run.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import orjson

from bench.http_client import HttpConnection
from bench.rest import (
    FLOOR_PATH,
    HOST,
    TICKETS,
    Seeded,
    cpu_seconds,
    free_port,
    inspect,
    load_average,
    login,
    start_server,
    stop_server,
    wait_ready,
)
from bench.seed import drop_database, seeded_database, twin_database
from db import migrate

CONCURRENCY = 16
SHAPES = ("detail", "404", "list", "search", "urgent", "timeoff", "create", "patch")  # `shapes`
URGENT = "status=open,acknowledged&priority=high,critical&ordering=-priority"
Request = tuple[str, str, bytes, int]  # method, path, body, expected status


@dataclass
class Side:
    """One server, its tree, its CPU per request batch by batch."""

    name: str
    tree: Path
    url: str = ""  # the seeded database, or its twin at an older tree's migration
    token: str = ""
    port: int = 0
    pid: int = 0
    created: list[int] = field(default_factory=list)  # tickets to delete at the end
    rounds: dict[str, list[float]] = field(default_factory=dict)


def shapes(seeded: Seeded, side: Side, offset: int) -> dict[str, Callable[[int], Request]]:
    """What each shape sends. PATCHes go to tickets of this side's own (no row-lock waits
    between the two servers); creates are deleted at the end."""
    tickets = seeded.ids["incident_tickets"]
    body = orjson.dumps({"title": "Paired write", "incident_type": seeded.incident_type,
                         "facility": seeded.facility, "priority": "high"})  # fmt: skip
    return {
        "detail": lambda n: ("GET", f"{TICKETS}{tickets[n % 500]}/", b"", 200),
        "list": lambda n: ("GET", f"{TICKETS}?page_size=50&status=open", b"", 200),
        # bench/rest.py's 1% term, and the urgent tickets (none in the seed: a quiet night)
        "search": lambda n: ("GET", f"{TICKETS}?page_size=50&search=transmitter%2042%20", b"", 200),
        "urgent": lambda n: ("GET", f"{TICKETS}?page_size=50&{URGENT}", b"", 200),
        # every request's conflicting shifts, 50 a page (the slowest list of #15)
        "timeoff": lambda n: ("GET", "/api/time-off-requests/?page_size=50", b"", 200),
        "404": lambda n: ("GET", FLOOR_PATH, b"", 404),
        "create": lambda n: ("POST", TICKETS, body, 201),
        "patch": lambda n: (
            "PATCH",
            f"{TICKETS}{tickets[offset + n % 64]}/",
            orjson.dumps({"title": f"Paired edit {side.name} {n}"}),
            200,
        ),
    }


async def batch(side: Side, make: Callable[[int], Request], count: int) -> float:
    """`count` requests from CONCURRENCY connections; the server's CPU ms per request."""
    numbers = itertools.count()

    async def client() -> None:
        conn = HttpConnection(side.port, side.token)  # fresh: idle keep-alives time out meanwhile
        await conn.open()
        try:
            while (n := next(numbers)) < count:
                method, path, body, expected = make(n)
                status, payload = await conn.request(method, path, body)
                if status != expected:
                    raise SystemExit(f"{side.name}: {method} {path} -> {status} {payload[:200]!r}")
                if method == "POST":
                    side.created.append(orjson.loads(payload)["id"])
        finally:
            await conn.close()

    before = cpu_seconds([side.pid])
    await asyncio.gather(*(client() for _ in range(CONCURRENCY)))
    return (cpu_seconds([side.pid]) - before) * 1000 / count


async def compare(sides: list[Side], seeded: Seeded, args: argparse.Namespace) -> None:
    makers = {side.name: shapes(seeded, side, 100 + 64 * i) for i, side in enumerate(sides)}
    for shape in args.shapes:
        for side in sides:  # warm-up, unmeasured
            await batch(side, makers[side.name][shape], args.batch // 2)
        for r in range(args.rounds):
            for side in sides if r % 2 == 0 else sides[::-1]:
                ms = await batch(side, makers[side.name][shape], args.batch)
                side.rounds.setdefault(shape, []).append(ms)
        a, b = (statistics.median(side.rounds[shape]) for side in sides)
        print(f"  {shape}: {a:.3f} / {b:.3f} ms = {b / a:.3f}x", flush=True)
    for side in sides:  # the creates' tickets go, so a reused database stays as seeded
        created, side.created = side.created, []
        if created:
            await batch(side, lambda n, c=created: _delete(c[n]), len(created))


def _delete(ticket: int) -> Request:
    return ("DELETE", f"{TICKETS}{ticket}/", b"", 204)


def print_table(sides: list[Side], args: argparse.Namespace, load: str) -> None:
    before, after = sides
    print(
        f"\nserver CPU ms per request, median of {args.rounds} alternating rounds of "
        f"{args.batch} requests (concurrency {CONCURRENCY}, one worker each); load at start "
        f"{load}, at end {load_average()}\nbefore: {before.tree}\nafter:  {after.tree}"
    )
    print(f"{'shape':<8} {'before':>8} {'after':>8} {'ratio':>7}  rounds before | after")
    for shape in args.shapes:
        a, b = before.rounds[shape], after.rounds[shape]
        ma, mb = statistics.median(a), statistics.median(b)
        print(
            f"{shape:<8} {ma:>8.3f} {mb:>8.3f} {mb / ma:>6.3f}x  "
            f"{' '.join(f'{x:.2f}' for x in a)} | {' '.join(f'{x:.2f}' for x in b)}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="the old source tree")
    parser.add_argument("--after", type=Path, default=Path("."), help="the new one (this one)")
    parser.add_argument("--shapes", nargs="*", default=list(SHAPES), choices=SHAPES)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--batch", type=int, default=1000, help="requests a batch")
    parser.add_argument("--tickets", type=int, default=10_000)
    args = parser.parse_args()
    sides = [Side("before", args.before.resolve()), Side("after", args.after.resolve())]
    url, _ = asyncio.run(seeded_database(args.tickets, reuse=True))
    for side in sides:  # a tree with an older schema gets a twin database at its migration
        head = tree_head(side.tree)
        side.url = url if head == migrate.head_revision() else asyncio.run(twin_database(url, head))
    processes = []
    try:
        for side in sides:
            side.port = free_port()
            log = Path(tempfile.mkdtemp(prefix="bms-paired-")) / "server.log"
            process = start_server(side.url, side.port, 1, log, tree=side.tree)
            processes.append(process)
            wait_ready(f"http://{HOST}:{side.port}", process, log)
            side.pid = process.pid
            side.token = login(f"http://{HOST}:{side.port}")
        seeded = asyncio.run(inspect(url, []))
        load = load_average()
        started = time.perf_counter()
        asyncio.run(compare(sides, seeded, args))
        print_table(sides, args, load)
        print(f"({time.perf_counter() - started:.0f} s)")
    finally:
        for process in processes:
            stop_server(process)
        for twin in {side.url for side in sides} - {url}:
            asyncio.run(drop_database(twin))
    return 0


def tree_head(tree: Path) -> str:
    """The newest migration `tree` knows, read by its own code in a process of its own."""
    found = subprocess.run(
        [sys.executable, "-c", "from db.migrate import head_revision; print(head_revision())"],
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
        check=True,
    )
    return found.stdout.strip()


if __name__ == "__main__":
    raise SystemExit(main())
