"""Migration 0018 counts the local days of the shifts already stored (#15)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from db import migrate
from db.types import UTCDateTime
from db.urls import async_driver_url
from tests.conftest import create_postgres_database, drop_postgres_database

BEFORE = "0017_15_search_text"


@pytest.fixture
async def empty_url(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    if backend == "postgres":
        url = await create_postgres_database()
        try:
            yield url
        finally:
            await drop_postgres_database(url)
    else:
        yield f"sqlite+aiosqlite:///{tmp_path / 'bms.sqlite3'}"


def _table(table_name: str, /, **columns: Any) -> sa.TableClause:
    return sa.table(table_name, *(sa.column(column, kind) for column, kind in columns.items()))


T0 = datetime(2026, 11, 1, tzinfo=UTC)
STAMPS = {"created_at": T0, "updated_at": T0}
_STAMPED = {"created_at": UTCDateTime(), "updated_at": UTCDateTime()}
LOCATIONS = _table(
    "locations",
    id=sa.Integer(),
    name=sa.String(),
    code=sa.String(),
    timezone=sa.String(),
    **_STAMPED,
)
FACILITIES = _table(
    "facilities",
    id=sa.Integer(),
    name=sa.String(),
    location_id=sa.Integer(),
    kind=sa.String(),
    **_STAMPED,
)
USERS = _table(
    "users",
    id=sa.Integer(),
    username=sa.String(),
    password_hash=sa.String(),
    role=sa.String(),
    credentials_changed_at=UTCDateTime(),
    **_STAMPED,
)
SHIFTS = _table("shifts", id=sa.Integer(), user_id=sa.Integer(), facility_id=sa.Integer(),
                start=UTCDateTime(), end=UTCDateTime(), status=sa.String(),
                local_first_day=sa.Date(), local_last_day=sa.Date(), **_STAMPED)  # fmt: skip


def _shift(shift_id: int, facility_id: int, start: datetime) -> dict[str, Any]:
    return {"id": shift_id, "user_id": 1, "facility_id": facility_id, "start": start,
            "end": start + timedelta(hours=2), "status": "scheduled", **STAMPS}  # fmt: skip


WORLD = (  # two facilities half a world apart, one operator, a night shift (UTC) at each
    LOCATIONS.insert().values([
        {"id": 1, "name": "London", "code": "LON", "timezone": "Europe/London", **STAMPS},
        {"id": 2, "name": "Tokyo", "code": "TYO", "timezone": "Asia/Tokyo", **STAMPS},
    ]),
    FACILITIES.insert().values([
        {"id": 1, "name": "MCR", "location_id": 1, "kind": "control_room", **STAMPS},
        {"id": 2, "name": "TX", "location_id": 2, "kind": "transmitter", **STAMPS},
    ]),
    USERS.insert().values(id=1, username="op", password_hash="", role="operator",
                          credentials_changed_at=T0, **STAMPS),
    SHIFTS.insert().values([
        _shift(1, 1, datetime(2026, 12, 1, 23, tzinfo=UTC)),
        _shift(2, 2, datetime(2026, 12, 3, 23, tzinfo=UTC)),
    ]),
)  # fmt: skip


async def _run(url: str, *statements: sa.Executable) -> list[tuple[Any, ...]]:
    """Run the statements in one transaction; the rows of the last that returns any."""
    engine = create_async_engine(async_driver_url(url), poolclass=NullPool)
    rows: list[tuple[Any, ...]] = []
    try:
        async with engine.begin() as conn:
            for statement in statements:
                result = await conn.execute(statement)
                rows = [tuple(row) for row in result] if result.returns_rows else rows
    finally:
        await engine.dispose()
    return rows


async def test_existing_shifts_get_their_days_at_their_facility(empty_url: str) -> None:
    await asyncio.to_thread(migrate.upgrade, empty_url, BEFORE)
    await _run(empty_url, *WORLD)
    await asyncio.to_thread(migrate.upgrade, empty_url)
    days = sa.select(SHIFTS.c.id, SHIFTS.c.local_first_day, SHIFTS.c.local_last_day)
    # London: 23:00-01:00 UTC is 1-2 December; Tokyo: 08:00-10:00 on 4 December.
    assert await _run(empty_url, days.order_by(SHIFTS.c.id)) == [
        (1, date(2026, 12, 1), date(2026, 12, 2)),
        (2, date(2026, 12, 4), date(2026, 12, 4)),
    ]
    forgotten = _shift(3, 1, datetime(2026, 12, 5, tzinfo=UTC))
    with pytest.raises(IntegrityError):  # NOT NULL: a writer that forgets them fails loudly
        await _run(empty_url, SHIFTS.insert().values(forgotten))
    await asyncio.to_thread(migrate.downgrade, empty_url, BEFORE)
    count = sa.select(sa.func.count()).select_from(sa.table("shifts"))
    assert await _run(empty_url, count) == [(2,)]
