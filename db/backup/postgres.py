"""PostgreSQL: `pg_dump -Fc` under an exported snapshot, and a restore in one transaction.

The restore feeds `pg_restore`'s SQL through one connection (COPY blocks via asyncpg's copy
protocol), so dropping the old tables, loading, migrating and the marker commit together:
a failure anywhere leaves the target as it was.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from db.backup import counts
from db.backup.libpq import client_program, libpq_env
from db.backup.manifest import ArchiveError
from db.urls import async_driver_url

_COPY = re.compile(r"COPY (?P<schema>\w+)\.(?P<table>\"?[\w]+\"?) \((?P<cols>[^)]*)\) FROM stdin;")
STDERR_LINES = 3
COPY_CHUNK_BYTES = 256 * 1024


def _engine(database_url: str) -> Any:
    return create_async_engine(async_driver_url(database_url), poolclass=NullPool)


async def _run(program: str, args: list[str], database_url: str) -> None:
    process = await asyncio.create_subprocess_exec(
        client_program(program),
        *args,
        env=libpq_env(database_url),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await process.communicate()
    if process.returncode != 0:
        raise ArchiveError(f"{program} failed: {_first_lines(stderr)}")


def _first_lines(stderr: bytes) -> str:
    lines = [line for line in stderr.decode(errors="replace").splitlines() if line.strip()]
    return " / ".join(lines[:STDERR_LINES]) or "no message"


async def dump(database_url: str, target: Path) -> tuple[str | None, dict[str, int]]:
    """Dump the database to `target`; return (revision, row counts) of that same snapshot."""
    engine = _engine(database_url)
    try:
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="REPEATABLE READ")
            async with conn.begin():
                snapshot = (await conn.execute(sa.text("SELECT pg_export_snapshot()"))).scalar()
                revision = await conn.run_sync(counts.revision)
                row_counts = await conn.run_sync(counts.row_counts)
                # The exported snapshot lives as long as this transaction stays open.
                await _run(
                    "pg_dump",
                    ["--format=custom", f"--snapshot={snapshot}", "--no-owner", "-f", str(target)],
                    database_url,
                )
    finally:
        await engine.dispose()
    return revision, row_counts


async def _drop_all(conn: AsyncConnection) -> None:
    """Drop every table, view and sequence in schema public (not the schema: we may not own it)."""
    rows = await conn.execute(
        sa.text(
            "SELECT c.relkind::text, c.relname FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v', 'm', 'S', 'p')"
        )
    )
    kinds = {"r": "TABLE", "p": "TABLE", "v": "VIEW", "m": "MATERIALIZED VIEW", "S": "SEQUENCE"}
    for relkind, name in rows.all():
        await conn.execute(sa.text(f'DROP {kinds[str(relkind)]} IF EXISTS public."{name}" CASCADE'))


async def _restore_lines(dump_file: Path) -> AsyncIterator[bytes]:
    process = await asyncio.create_subprocess_exec(
        client_program("pg_restore"),
        "--no-owner",
        "--no-privileges",
        "-f",
        "-",
        str(dump_file),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        limit=2**24,
    )
    assert process.stdout is not None and process.stderr is not None
    try:
        while line := await process.stdout.readline():
            yield line
        stderr = await process.stderr.read()
        if await process.wait() != 0:
            raise ArchiveError(f"pg_restore failed: {_first_lines(stderr)}")
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def _load(
    conn: AsyncConnection, dump_file: Path, progress: Callable[[int], None] | None
) -> None:
    """Execute pg_restore's SQL on this connection, COPY data through the copy protocol."""
    raw = (await conn.get_raw_connection()).driver_connection
    assert raw is not None
    lines = _restore_lines(dump_file)
    statement: list[bytes] = []

    async def flush() -> None:
        text = b"".join(statement).decode()
        statement.clear()
        # A batch of only comments would be an empty query, which asyncpg cannot take.
        if any(line.strip() and not line.startswith("--") for line in text.splitlines()):
            await raw.execute(text)

    async for line in lines:
        if line.startswith(b"\\"):
            continue  # psql meta-commands (\restrict, \connect): not SQL
        match = _COPY.fullmatch(line.decode().rstrip("\n"))
        if match is None:
            statement.append(line)
            continue
        await flush()
        columns = [c.strip().strip('"') for c in match["cols"].split(",")]
        await raw.copy_to_table(
            match["table"].strip('"'),
            schema_name=match["schema"],
            columns=columns,
            source=_copy_rows(lines, progress),
            format="text",
        )
    await flush()


async def _copy_rows(
    lines: AsyncIterator[bytes], progress: Callable[[int], None] | None
) -> AsyncIterator[bytes]:
    """The data lines of one COPY block, in chunks (one write per line would be slow)."""
    chunk: list[bytes] = []
    size = 0
    async for line in lines:
        if line == b"\\.\n":
            break
        chunk.append(line)
        size += len(line)
        if size >= COPY_CHUNK_BYTES:
            if progress is not None:
                progress(len(chunk))  # rows
            yield b"".join(chunk)
            chunk, size = [], 0
    if chunk:
        if progress is not None:
            progress(len(chunk))
        yield b"".join(chunk)


SyncStep = Callable[[Connection], None]


async def restore(
    database_url: str,
    dump_file: Path,
    *,
    expected_counts: dict[str, int],
    migrate: SyncStep,
    finish: SyncStep,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Replace the database's tables by the dump's, migrate, `finish` (marker), commit once."""
    engine = _engine(database_url)
    try:
        async with engine.connect() as conn, conn.begin():
            await conn.execute(sa.text("SELECT 1"))  # opens the transaction the raw calls join
            await _drop_all(conn)
            await _load(conn, dump_file, progress)
            await conn.execute(sa.text("RESET search_path"))  # the dump cleared it
            loaded = await conn.run_sync(counts.row_counts)
            if loaded != expected_counts:
                raise ArchiveError("restored row counts differ from the manifest")
            await conn.run_sync(migrate)
            await conn.run_sync(finish)
    finally:
        await engine.dispose()


async def inspect(database_url: str) -> tuple[dict[str, int], int]:
    """(row counts, newest event id) of the target database."""
    engine = _engine(database_url)
    try:
        async with engine.connect() as conn:
            row_counts = await conn.run_sync(counts.row_counts)
            newest = await conn.run_sync(counts.newest_event_id)
    except (OSError, sa.exc.DBAPIError) as exc:
        raise ArchiveError(f"cannot read the target database: {exc}") from None
    finally:
        await engine.dispose()
    return row_counts, newest


async def other_sessions(database_url: str) -> int:
    """Sessions of other processes on the target database (servers that should be stopped)."""
    engine = _engine(database_url)
    try:
        async with engine.connect() as conn:
            value = await conn.scalar(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
    finally:
        await engine.dispose()
    return int(value or 0)
