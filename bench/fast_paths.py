"""What the database fast path pays: CPU per statement on each FAST_PATHS setting.

db/compiled_cache.py (FAST_PATHS=1) against `databases`' own compile (FAST_PATHS=0), in
this process, on PostgreSQL and on SQLite: a detail read, a 50-row list page and an
update. CPU time of this process, so the figure holds on a busy machine. The REST and
fan-out benchmarks measure the whole request; run them with FAST_PATHS=0 too.

    .venv/bin/python bench/fast_paths.py [--rounds 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa

from bench.ws_common import create_database, drop_database
from db import migrate
from db.statements import bound
from db.store import Store
from db.tables import locations

NOW = datetime(2026, 12, 1, tzinfo=UTC)
ROWS = 200


async def _seed(url: str) -> None:
    store = Store(url)
    await store.connect()
    try:
        async with store.connection() as conn:
            await conn.execute_many(
                locations.insert(),
                [
                    {"name": f"Site {i:04}", "code": f"S{i:04}", "timezone": "UTC",
                     "created_at": NOW, "updated_at": NOW}
                    for i in range(ROWS)
                ],
            )  # fmt: skip
    finally:
        await store.disconnect()


async def _cpu_us(store: Store, rounds: int, run: Callable[[int], Awaitable[object]]) -> float:
    """Microseconds of this process's CPU per call (after a warm-up)."""
    for i in range(50):
        await run(i)
    start = time.process_time()
    for i in range(rounds):
        await run(i)
    return (time.process_time() - start) / rounds * 1e6


async def measure(url: str, *, fast_paths: bool, rounds: int) -> dict[str, float]:
    store = Store(url, pool_max=1, fast_paths=fast_paths)
    await store.connect()
    by_id = sa.select(locations).where(locations.c.id == sa.bindparam("id"))
    try:
        async with store.connection() as conn:
            first = await conn.fetch_val(sa.select(sa.func.min(locations.c.id)))

            async def detail(i: int) -> object:
                return await conn.fetch_one(bound(by_id, id=first + i % ROWS))

            async def page(i: int) -> object:
                query = (
                    sa.select(locations)
                    .where(locations.c.name >= f"Site {i % 100:04}")
                    .order_by(locations.c.name)
                    .limit(50)
                )
                return await conn.fetch_all(query)

            async def update(i: int) -> object:
                statement = (
                    locations.update()
                    .where(locations.c.id == first + i % ROWS)
                    .values(address=f"Street {i}", updated_at=NOW)
                )
                return await conn.execute(statement)

            return {
                "detail": await _cpu_us(store, rounds, detail),
                "list page (50 rows)": await _cpu_us(store, rounds // 4, page),
                "update": await _cpu_us(store, rounds, update),
            }
    finally:
        await store.disconnect()


async def main(args: argparse.Namespace) -> None:
    postgres = await create_database()
    scratch = tempfile.TemporaryDirectory()
    sqlite = f"sqlite:///{scratch.name}/bench.sqlite3"
    await asyncio.to_thread(migrate.upgrade, sqlite)
    try:
        print(f"CPU µs per statement in this process ({args.rounds} rounds; lists a quarter)")
        print(f"{'backend':<11} {'statement':<20} {'fast':>8} {'plain':>8} {'plain/fast':>10}")
        for name, url in (("PostgreSQL", postgres), ("SQLite", sqlite)):
            await _seed(url)
            fast = await measure(url, fast_paths=True, rounds=args.rounds)
            plain = await measure(url, fast_paths=False, rounds=args.rounds)
            for statement, cost in fast.items():
                print(
                    f"{name:<11} {statement:<20} {cost:>8.0f} {plain[statement]:>8.0f} "
                    f"{plain[statement] / cost:>9.1f}x"
                )
    finally:
        await drop_database(postgres)
        scratch.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    asyncio.run(main(parser.parse_args()))
