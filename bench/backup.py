"""Backup, restore, export and import over a seeded PostgreSQL database (100,000 tickets).

Prints one table: wall time, archive/file size, rows per second and peak memory (RSS of the
`bms` process doing the work). Export runs on two seed sizes to show its memory stays flat
in the row count. Never part of the test run.

    .venv/bin/python bench/backup.py [--tickets 100000] [--small 10000] [--reuse]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg

from bench.seed import _admin_execute as admin_execute
from bench.seed import asyncpg_dsn, database_url, drop_database, seeded_database

BMS = str(Path(sys.executable).with_name("bms"))


@dataclass
class Row:
    step: str
    secs: float
    size_bytes: int | None = None
    rows: int | None = None
    peak_rss_kib: int | None = None


def run_bms(args: list[str], *, url: str, data_dir: Path) -> tuple[float, int, str]:
    """Run `bms ARGS` to completion; return (seconds, peak RSS in KiB, stderr+stdout)."""
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "BMS_DATA_DIR": str(data_dir),
        "SECRET_KEY": "bench-secret-" + "x" * 40,
        "BMS_ENV": "test",
    }
    start = time.perf_counter()
    process = subprocess.Popen(
        [BMS, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    _, status, usage = os.wait4(process.pid, 0)
    secs = time.perf_counter() - start
    output = process.stdout.read().decode() if process.stdout else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"bench: bms {' '.join(args)} failed:\n{output}")
    return secs, usage.ru_maxrss, output


async def fresh_database(migrated: bool) -> str:
    name = f"bms_bench_{uuid.uuid4().hex[:12]}"
    await admin_execute(f'CREATE DATABASE "{name}"')
    url = database_url(name)
    if migrated:
        from db import migrate

        await asyncio.to_thread(migrate.upgrade, url)
    return url


async def give_every_user_a_profile(url: str) -> None:
    """bench/seed.py inserts bare users; through the API every user has a profile, and the
    export (REST representations) carries people as profiles."""
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.execute(
            "INSERT INTO profiles (user_id, created_at, updated_at) SELECT id, now(), now() "
            "FROM users WHERE id NOT IN (SELECT user_id FROM profiles)"
        )
    finally:
        await conn.close()


def line_count(path: Path) -> int:
    with path.open("rb") as fh:
        return sum(1 for _ in fh)


async def measure(tickets: int, small: int, reuse: bool) -> list[Row]:
    rows: list[Row] = []
    cleanup: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bms-bench-backup-") as scratch:
        work = Path(scratch)
        small_url, drop_small = await seeded_database(small, reuse=reuse)
        url, drop_big = await seeded_database(tickets, reuse=reuse)
        cleanup += [u for u, d in ((small_url, drop_small), (url, drop_big)) if d]
        for seeded in (small_url, url):
            await give_every_user_a_profile(seeded)
        try:
            secs, rss, _ = run_bms(["backup", "--to", str(work / "b")], url=url, data_dir=work)
            archive = next((work / "b").glob("*.tar"))
            manifest_rows = None
            rows.append(Row("bms backup", secs, archive.stat().st_size, manifest_rows, rss))
            secs, rss, out = run_bms(["backup", "verify", str(archive)], url=url, data_dir=work)
            total = int(out.split(" rows")[0].rsplit(", ", 1)[1].replace(",", ""))
            rows[-1].rows = total
            rows.append(Row("bms backup verify", secs, None, total, rss))
            target = await fresh_database(migrated=False)
            cleanup.append(target)
            secs, rss, _ = run_bms(["restore", str(archive)], url=target, data_dir=work / "r")
            rows.append(Row("bms restore (empty db)", secs, None, total, rss))

            for label, source in ((f"{small:,} tickets", small_url), (f"{tickets:,} tickets", url)):
                out_file = work / f"export-{uuid.uuid4().hex[:6]}.jsonl"
                secs, rss, _ = run_bms(["export", "--to", str(out_file)], url=source, data_dir=work)
                count = line_count(out_file)
                rows.append(Row(f"bms export ({label})", secs, out_file.stat().st_size, count, rss))
            target = await fresh_database(migrated=True)
            cleanup.append(target)
            secs, rss, _ = run_bms(["import", str(out_file)], url=target, data_dir=work / "i")
            rows.append(Row(f"bms import ({tickets:,} tickets)", secs, None, count, rss))
        finally:
            for doomed in cleanup:
                await drop_database(doomed)
    return rows


def print_table(rows: list[Row]) -> None:
    head = ("step", "seconds", "size MiB", "rows", "rows/s", "peak RSS MiB")
    print(f"{head[0]:<32} " + " ".join(f"{h:>9}" for h in head[1:]))
    for r in rows:
        size = f"{r.size_bytes / 2**20:.1f}" if r.size_bytes is not None else "-"
        count = f"{r.rows:,}" if r.rows is not None else "-"
        rate = f"{r.rows / r.secs:,.0f}" if r.rows else "-"
        rss = f"{r.peak_rss_kib / 1024:.0f}" if r.peak_rss_kib else "-"
        print(f"{r.step:<32} {r.secs:>9.1f} {size:>9} {count:>9} {rate:>9} {rss:>9}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=10_000, help="export memory comparison")
    parser.add_argument("--reuse", action="store_true", help="keep/reuse the seeded databases")
    parser.add_argument("--json", action="store_true", help="also print the rows as JSON")
    args = parser.parse_args()
    rows = asyncio.run(measure(args.tickets, args.small, args.reuse))
    print_table(rows)
    if args.json:
        print(json.dumps([r.__dict__ for r in rows]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
