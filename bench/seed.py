"""A seeded benchmark database: 100,000 incident tickets and realistic rows for every list.

Rows go in with one `INSERT … SELECT generate_series` per table (seconds, not minutes), and a
database seeded once is reused by later runs with `--reuse` (`bms_bench_seed_<tickets>`), so
iterating on a change costs only the measurement. Used by bench/rest.py and bench/writes.py.
"""

from __future__ import annotations

import asyncio
import os
import uuid

import asyncpg
from sqlalchemy.engine import make_url

from db import migrate
from db.local_days import covered_days

POSTGRES_URL = os.environ.get(
    "BMS_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
PASSWORD = "bench-password-not-secret"
ADMIN = "bench"
USERS = 50
FACILITIES = 20
# Most incidents of a real system are closed; 5% are open.
STATUS_SQL = """CASE WHEN g % 20 = 0 THEN 'open' WHEN g % 20 = 1 THEN 'acknowledged'
    WHEN g % 20 = 2 THEN 'in_progress' WHEN g % 20 = 3 THEN 'resolved' ELSE 'closed' END"""


def asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def database_url(name: str) -> str:
    return make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)


async def _admin_execute(sql: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(POSTGRES_URL))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _exists(name: str) -> bool:
    conn = await asyncpg.connect(asyncpg_dsn(POSTGRES_URL))
    try:
        return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))
    finally:
        await conn.close()


async def _seeded(url: str) -> bool:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return bool(
            await conn.fetchval(
                "SELECT 1 FROM information_schema.tables WHERE table_name = 'bench_seeded'"
            )
        )
    finally:
        await conn.close()


async def drop_database(url: str) -> None:
    await _admin_execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')


async def twin_database(url: str, revision: str) -> str:
    """A copy of the seeded database at `url`, migrated down to `revision` (an older tree's
    head), so that tree can serve it beside the newer one (bench/paired.py)."""
    name = f"{make_url(url).database}_at_{revision[:4]}"
    twin = database_url(name)
    await drop_database(twin)
    await _admin_execute(f'CREATE DATABASE "{name}" TEMPLATE "{make_url(url).database}"')
    await asyncio.to_thread(migrate.downgrade, twin, revision)
    return twin


async def create_admin(url: str) -> None:
    """The admin the bench acts as, created through the domain (password policy and hash)."""
    from db.store import Store
    from domain.users import create_user

    store = Store(url)
    await store.connect()
    try:
        async with store.unit_of_work(actor_id=None) as uow:
            await create_user(uow, username=ADMIN, password=PASSWORD, role="admin")
    finally:
        await store.disconnect()


async def seeded_database(tickets: int, *, reuse: bool) -> tuple[str, bool]:
    """A migrated, seeded database: (url, whether this run made it and should drop it)."""
    name = f"bms_bench_seed_{tickets}" if reuse else f"bms_bench_{uuid.uuid4().hex[:12]}"
    url = database_url(name)
    if reuse and await _exists(name):
        await asyncio.to_thread(migrate.upgrade, url)  # main may have gained a migration
        if await _seeded(url):
            await _vacuum(url)
            return url, False
        await drop_database(url)
    await _admin_execute(f'CREATE DATABASE "{name}"')
    await asyncio.to_thread(migrate.upgrade, url)
    await create_admin(url)
    await seed(url, tickets=tickets)
    return url, not reuse


async def _vacuum(url: str) -> None:
    """Clear what earlier runs' writes left (dead rows at the newest end of every index a
    list reads backwards), as autovacuum would: a server may run with it off (seen here:
    16 ms instead of 0.3 ms of PostgreSQL per ticket page after a few runs)."""
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


async def seed(url: str, *, tickets: int) -> None:
    """Users, facilities, and the rows of every list, proportional to `tickets`."""
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        async with conn.transaction():
            await _seed_people_and_places(conn)
            await _seed_tickets(conn, tickets)
            await _seed_service_tickets(conn, max(1000, tickets // 5))
            await _seed_shifts_and_time(conn, max(1000, tickets // 5))
            await _seed_scheduled_events(conn, max(500, tickets // 10))
            await _seed_time_off(conn, max(250, tickets // 20))
            await conn.execute("CREATE TABLE bench_seeded (tickets int)")
        await conn.execute("VACUUM ANALYZE")  # a settled database, as autovacuum leaves it
    finally:
        await conn.close()


async def _seed_people_and_places(conn: asyncpg.Connection) -> None:
    await conn.execute(
        """
        INSERT INTO users (username, email, first_name, last_name, password_hash, role,
            credentials_changed_at, created_at, updated_at)
        SELECT 'operator' || g, 'operator' || g || '@example.org', 'Op', 'Erator ' || g,
            (SELECT password_hash FROM users WHERE username = $1),
            CASE WHEN g % 10 = 0 THEN 'manager' ELSE 'operator' END, now(), now(), now()
        FROM generate_series(1, $2::int) AS g
        """,
        ADMIN,
        USERS,
    )
    await conn.execute(
        "INSERT INTO locations (name, code, timezone, created_at, updated_at) "
        "VALUES ('Bench', 'B', 'Europe/London', now(), now())"
    )
    await conn.execute(
        """
        INSERT INTO facilities (name, location_id, kind, created_at, updated_at)
        SELECT 'Studio ' || g, (SELECT min(id) FROM locations), 'studio', now(), now()
        FROM generate_series(1, $1::int) AS g
        """,
        FACILITIES,
    )
    await conn.execute(
        "INSERT INTO incident_types (name, default_priority, created_at, updated_at) "
        "SELECT 'Bench type ' || g, 'medium', now(), now() FROM generate_series(1, 5) AS g"
    )


# Subqueries picking the g-th user / facility / type, so the seed needs no ids from Python.
_USER = f"(SELECT min(id) FROM users) + 1 + (g % {USERS})"
_FACILITY = f"(SELECT min(id) FROM facilities) + (g % {FACILITIES})"


async def _seed_tickets(conn: asyncpg.Connection, count: int) -> None:
    await conn.execute(
        f"""
        INSERT INTO incident_tickets (
            number, title, description, incident_type_id, facility_id, priority, status,
            on_air_impact, reported_by, assigned_to, occurred_at, acknowledged_at,
            resolved_at, closed_at, resolution, created_at, updated_at)
        SELECT 'INC-' || lpad(g::text, 6, '0'), 'Bench incident ' || g,
            'Seeded by bench/seed.py: transmitter ' || (g % 97) || ' lost sync',
            (SELECT min(id) FROM incident_types) + g % 5, {_FACILITY},
            (ARRAY['low', 'medium', 'high', 'critical'])[1 + g % 4], {STATUS_SQL},
            g % 7 = 0, {_USER}, CASE WHEN g % 3 = 0 THEN {_USER} END, t, NULL, NULL,
            CASE WHEN g % 20 >= 4 THEN t + interval '1 hour' END,
            CASE WHEN g % 20 >= 3 THEN 'Fixed.' ELSE '' END, t, t
        FROM generate_series(1, $1::int) AS g,
            LATERAL (SELECT now() - make_interval(mins => $1::int - g) AS t) AS stamp
        """,
        count,
    )
    await _take_numbers(conn, "incident_tickets", count)


async def _seed_service_tickets(conn: asyncpg.Connection, count: int) -> None:
    await conn.execute(
        f"""
        INSERT INTO service_tickets (number, title, description, category, facility_id,
            priority, status, requested_by, assigned_to, due_date, completed_at,
            created_at, updated_at)
        SELECT 'SRV-' || lpad(g::text, 6, '0'), 'Bench service ' || g, 'Replace lamp ' || g,
            (ARRAY['maintenance', 'repair', 'installation', 'request', 'other'])[1 + g % 5],
            {_FACILITY}, (ARRAY['low', 'medium', 'high', 'critical'])[1 + g % 4],
            (ARRAY['new', 'assigned', 'in_progress', 'on_hold', 'completed', 'completed',
                   'completed', 'cancelled'])[1 + g % 8],
            {_USER}, CASE WHEN g % 8 > 0 THEN {_USER} END, (t + interval '7 days')::date,
            CASE WHEN g % 8 BETWEEN 4 AND 6 THEN t + interval '2 days' END, t, t
        FROM generate_series(1, $1::int) AS g,
            LATERAL (SELECT now() - make_interval(mins => 5 * ($1::int - g)) AS t) AS stamp
        """,
        count,
    )
    await _take_numbers(conn, "service_tickets", count)


async def _seed_shifts_and_time(conn: asyncpg.Connection, count: int) -> None:
    """Shifts (8 hours, no overlaps per person) and one time entry per past shift."""
    await conn.execute(
        f"""
        INSERT INTO shifts (user_id, facility_id, position, start, "end", status, notes,
            created_at, updated_at, local_first_day, local_last_day)
        SELECT {_USER}, {_FACILITY}, 'Operator', s, s + interval '8 hours',
            CASE WHEN s > now() THEN (ARRAY['scheduled', 'confirmed'])[1 + g % 2]
                 WHEN g % 25 = 0 THEN 'cancelled' ELSE 'completed' END, '', now(), now(),
            s::date, s::date  -- counted below, by the application's rule
        FROM generate_series(1, $1::int) AS g,
            LATERAL (SELECT date_trunc('hour', now())
                + make_interval(hours => 12 * (g / {USERS}) - 12 * ($1::int / {USERS}) * 3 / 4)
                AS s) AS stamp
        """,
        count,
    )
    await _count_local_days(conn)
    await conn.execute(
        """
        INSERT INTO time_entries (user_id, date, start, "end", shift_id, description, status,
            created_at, updated_at)
        SELECT user_id, start::date, start, "end", id, 'Shift worked',
            (ARRAY['draft', 'submitted', 'approved', 'approved', 'rejected'])[1 + id % 5],
            "end", "end"
        FROM shifts WHERE "end" < now()
        """
    )


async def _count_local_days(conn: asyncpg.Connection) -> None:
    """Each shift's days at its facility, by the rule BMS writes them with (db/local_days.py)."""
    rows = await conn.fetch(
        """
        SELECT s.id, s.start, s."end", l.timezone FROM shifts s
        JOIN facilities f ON f.id = s.facility_id JOIN locations l ON l.id = f.location_id
        """
    )
    counted = []
    for row in rows:
        days = covered_days(row["start"], row["end"], row["timezone"])
        counted.append((row["id"], days["local_first_day"], days["local_last_day"]))
    await conn.executemany(
        "UPDATE shifts SET local_first_day = $2, local_last_day = $3 WHERE id = $1", counted
    )


async def _seed_scheduled_events(conn: asyncpg.Connection, count: int) -> None:
    await conn.execute(
        f"""
        INSERT INTO scheduled_events (title, description, kind, facility_id, start, "end",
            all_day, created_by, created_at, updated_at)
        SELECT 'Bench event ' || g, '',
            (ARRAY['broadcast', 'maintenance', 'meeting', 'training', 'other'])[1 + g % 5],
            {_FACILITY}, s, s + interval '2 hours', false, {_USER}, now(), now()
        FROM generate_series(1, $1::int) AS g,
            LATERAL (SELECT date_trunc('hour', now())
                + make_interval(hours => 3 * (g - $1::int / 2)) AS s) AS stamp
        """,
        count,
    )
    await conn.execute(
        f"""
        INSERT INTO scheduled_event_attendees (event_id, user_id)
        SELECT e.id, (SELECT min(id) FROM users) + 1 + ((e.id + k) % {USERS})
        FROM scheduled_events AS e, generate_series(0, 2) AS k
        """
    )


async def _seed_time_off(conn: asyncpg.Connection, count: int) -> None:
    """Requests filed one every 7 minutes up to now (distinct `created_at`, as real ones
    have); `start_date` repeats across the year, so `ordering=start_date` has ties."""
    await conn.execute(
        f"""
        INSERT INTO time_off_requests (user_id, kind, start_date, end_date, reason, status,
            created_at, updated_at)
        SELECT {_USER}, (ARRAY['vacation', 'sick', 'personal', 'other'])[1 + g % 4],
            d, d + (g % 5), 'Bench', (ARRAY['pending', 'approved', 'denied',
            'approved', 'cancelled'])[1 + g % 5], t, t
        FROM generate_series(1, $1::int) AS g,
            LATERAL (SELECT (now() + make_interval(days => g % 365 - 180))::date AS d) AS day,
            LATERAL (SELECT now() - make_interval(mins => 7 * ($1::int - g)) AS t) AS stamp
        """,
        count,
    )


async def _take_numbers(conn: asyncpg.Connection, counter: str, count: int) -> None:
    await conn.execute(
        "INSERT INTO counters (name, value) VALUES ($1, $2) "
        "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        counter,
        count,
    )
