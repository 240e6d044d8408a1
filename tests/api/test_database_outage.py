"""Issue #11 §3: PostgreSQL connections cut under concurrent writes answer 503, never 500.

The test terminates the backends of its own test database only (other agents share the
server), from a connection of its own, while writers keep posting.
"""

from __future__ import annotations

import asyncio
import gc
import sqlite3
from collections import Counter
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url
from starlette.applications import Starlette

from api.app import create_app
from bms.settings import Settings
from db import store as store_module
from db.backup.sqlite import database_path

WRITERS = 6
CUTS = 3
TERMINATE_OWN_BACKENDS = """
SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid()
"""


def _location(writer: int, n: int) -> dict[str, str]:
    return {"name": f"Site {writer}-{n}", "code": f"S{writer}-{n}", "timezone": "UTC"}


@pytest.fixture
async def loop_errors() -> Any:
    """Record what reaches the event loop's exception handler (e.g. never-retrieved tasks)."""
    loop = asyncio.get_running_loop()
    seen: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: seen.append(context))
    try:
        yield seen
    finally:
        loop.set_exception_handler(previous)


async def test_cut_connections_answer_503_with_retry_after_then_recover(
    app: Starlette, settings: Settings, login: Any, backend: str, loop_errors: list[Any]
) -> None:
    if backend != "postgres":
        pytest.skip("terminating server backends is a PostgreSQL scenario")
    manager = await login("manager")
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    client = httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers=dict(manager.headers)
    )
    statuses: Counter[int] = Counter()
    answered = asyncio.Condition()
    stop = asyncio.Event()

    async def post(writer: int, n: int) -> httpx.Response:
        response = await client.post("/api/locations/", json=_location(writer, n))
        statuses[response.status_code] += 1
        if response.status_code == 503:
            assert int(response.headers["Retry-After"]) >= 1, response.headers
        async with answered:
            answered.notify_all()
        return response

    async def writer(w: int) -> None:
        n = 0
        while not stop.is_set():
            await post(w, n)
            n += 1

    dsn = make_url(settings.database_url).set(drivername="postgresql")
    killer = await asyncpg.connect(dsn.render_as_string(hide_password=False))
    writers = [asyncio.create_task(writer(w)) for w in range(WRITERS)]
    try:
        async with asyncio.timeout(60):
            while statuses[503] < CUTS:  # cut until requests in flight saw it
                seen = statuses.total()
                async with answered:  # each writer answered again since the last cut
                    await answered.wait_for(lambda s=seen: statuses.total() >= s + WRITERS)
                await killer.fetchval(TERMINATE_OWN_BACKENDS)
    finally:
        stop.set()
        await asyncio.gather(*writers, return_exceptions=True)
        await killer.close()

    # Every pooled connection works again: more concurrent writes than the pool holds.
    after = await asyncio.gather(*(post(100 + i, 0) for i in range(2 * settings.database_pool_max)))
    assert [r.status_code for r in after] == [201] * len(after), [r.text for r in after]
    assert set(statuses) <= {201, 503}, statuses
    await client.aclose()
    gc.collect()  # tasks and generators left behind report through the loop's handler
    await asyncio.sleep(0)
    assert loop_errors == [], [str(e.get("exception") or e.get("message")) for e in loop_errors]


async def test_sqlite_locked_by_another_process_answers_503_then_recovers(
    settings: Settings, login: Any, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process (a CLI command, the worker) holds the write lock past the busy timeout:
    503 with Retry-After and nothing written, never a 500."""
    if backend != "sqlite":
        pytest.skip("SQLite's one write lock")
    manager = await login("manager")
    monkeypatch.setattr(store_module, "SQLITE_BUSY_TIMEOUT_SECS", 0.2)
    app = create_app(settings)
    other_process = sqlite3.connect(database_path(settings.effective_database_url))
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                base_url="http://testserver",
                headers=dict(manager.headers),
            ) as client,
        ):
            other_process.execute("BEGIN IMMEDIATE")
            busy = await client.post("/api/locations/", json=_location(0, 0))
            assert busy.status_code == 503, busy.text
            assert int(busy.headers["Retry-After"]) >= 1
            other_process.rollback()
            created = await client.post("/api/locations/", json=_location(0, 0))
            assert created.status_code == 201, created.text
    finally:
        other_process.close()
