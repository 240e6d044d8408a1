"""Ids are never reused, on either backend: SQLite tables are AUTOINCREMENT (#9)."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from db import migrate
from db.tables import locations
from db.urls import async_driver_url
from tests.builders.tickets import make_incident, make_incident_type
from tests.conftest import BACKENDS

NOW = datetime(2026, 12, 3, tzinfo=UTC)


async def test_a_deleted_tickets_id_is_not_given_again(login) -> None:
    admin = await login("admin")
    kind = await make_incident_type(admin)
    first = await make_incident(admin, incident_type=kind["id"])
    assert (await admin.delete(f"/api/incident-tickets/{first['id']}/")).status_code == 204
    second = await make_incident(admin, incident_type=kind["id"])
    assert second["id"] > first["id"]


@pytest.mark.skipif("sqlite" not in BACKENDS, reason="the migration rebuilds SQLite tables only")
async def test_the_sqlite_migration_keeps_rows_and_ids(tmp_path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'old.sqlite3'}"
    await asyncio.to_thread(migrate.upgrade, url, "0006_10_token_family")
    engine = create_async_engine(async_driver_url(url), poolclass=NullPool)
    row = {"address": "", "timezone": "UTC", "created_at": NOW, "updated_at": NOW}
    try:
        async with engine.begin() as conn:
            for n in (1, 2, 3):
                await conn.execute(
                    locations.insert().values(id=n, name=f"L{n}", code=f"C{n}", **row)
                )
            await conn.execute(locations.delete().where(locations.c.id == 3))
        await asyncio.to_thread(migrate.upgrade, url)
        async with engine.begin() as conn:
            kept = (await conn.execute(sa.select(locations.c.id, locations.c.name))).all()
            assert [tuple(r) for r in kept] == [(1, "L1"), (2, "L2")]
            await conn.execute(locations.delete().where(locations.c.id == 2))
            new_id = (
                await conn.execute(locations.insert().values(name="L4", code="C4", **row))
            ).inserted_primary_key[0]
        assert (
            new_id == 3
        )  # 3 was deleted before the migration (its max was 2 then); 2 is not reused
    finally:
        await engine.dispose()


def _sqlite_indexes(path) -> list[tuple[str, str]]:
    with sqlite3.connect(path) as conn:
        return sorted(
            conn.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql NOT NULL"
            )
        )


@pytest.mark.skipif("sqlite" not in BACKENDS, reason="the migration rebuilds SQLite tables only")
def test_the_sqlite_rebuild_keeps_every_index_and_warns_of_nothing(tmp_path, recwarn) -> None:
    # Reflection cannot see expression indexes: the rebuild once dropped the priority-rank
    # index of 0002 (list pages then sorted every row) and printed a SQLAlchemy warning.
    path = tmp_path / "old.sqlite3"
    url = f"sqlite:///{path}"
    migrate.upgrade(url, "0006_10_token_family")
    before = _sqlite_indexes(path)
    recwarn.clear()
    migrate.upgrade(url, "0007_9_sqlite_autoincrement")
    assert [str(w.message) for w in recwarn] == []
    assert _sqlite_indexes(path) == before
