"""The compiled-statement cache: one compile per shape, each execution binds its own values."""

from __future__ import annotations

from contextlib import aclosing
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from db import compiled_cache
from db.compiled_cache import CachedStatement
from db.statements import bound
from db.tables import events, history, locations

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


async def _add_locations(store, names: list[str]) -> dict[str, int]:
    ids = {}
    async with store.unit_of_work(actor_id=None) as uow:
        for i, name in enumerate(names):
            stamp = T0 + timedelta(minutes=i)
            ids[name] = await uow.conn.execute(
                locations.insert().values(
                    name=name, code=name[:3], timezone="UTC", created_at=stamp, updated_at=stamp
                )
            )
    return ids


def _by_name(name: str) -> sa.Select:
    return sa.select(locations).where(locations.c.name == name)


def _statements(store):
    return store.database._backend.statements


async def test_same_shape_binds_each_statements_own_values(store) -> None:
    ids = await _add_locations(store, ["Alpha", "Bravo", "Charlie"])
    async with store.connection() as conn:
        for name in ["Alpha", "Bravo", "Charlie", "Bravo", "Nowhere"]:
            row = await conn.fetch_one(_by_name(name))
            assert (row["id"] if row else None) == ids.get(name)
    found = _statements(store).lookup(_by_name("Alpha"))
    assert found is not None and isinstance(found[0], CachedStatement)
    assert found[0] is _statements(store).lookup(_by_name("Zulu"))[0]  # one compile per shape


async def test_cached_rows_match_uncached_rows(store) -> None:
    await _add_locations(store, ["Alpha", "Bravo", "Charlie", "Delta"])
    query = (
        sa.select(locations.c.id, locations.c.name, locations.c.created_at)
        .where(locations.c.created_at >= T0 + timedelta(minutes=1))
        .order_by(locations.c.name.desc())
        .limit(2)
        .offset(1)
    )
    async with store.connection() as conn:
        first = [dict(row._mapping) for row in await conn.fetch_all(query)]
        again = await conn.fetch_all(query)
    assert [r["name"] for r in first] == ["Charlie", "Bravo"]
    assert [(r["id"], r["name"], r["created_at"]) for r in again] == [
        (r["id"], r["name"], r["created_at"]) for r in first
    ]
    assert again[0]["created_at"] == T0 + timedelta(minutes=2)  # bind and result processors ran


async def test_limit_and_offset_are_values_not_shape(store) -> None:
    await _add_locations(store, [f"L{i}" for i in range(5)])
    query = sa.select(locations.c.name).order_by(locations.c.name)
    async with store.connection() as conn:
        pages = [
            [r["name"] for r in await conn.fetch_all(query.limit(size).offset(start))]
            for size, start in [(2, 0), (2, 2), (3, 1), (10, 4)]
        ]
    assert pages == [["L0", "L1"], ["L2", "L3"], ["L1", "L2", "L3"], ["L4"]]


async def test_in_lists_of_different_lengths_are_not_cached(store) -> None:
    await _add_locations(store, ["Alpha", "Bravo", "Charlie"])
    assert (
        _statements(store).lookup(sa.select(locations).where(locations.c.name.in_(["Alpha"])))
        is None
    )
    async with store.connection() as conn:
        for names in (["Alpha"], ["Alpha", "Bravo"], ["Alpha", "Bravo", "Charlie"], ["Zulu"]):
            rows = await conn.fetch_all(
                sa.select(locations.c.name).where(locations.c.name.in_(names))
            )
            assert sorted(r["name"] for r in rows) == [n for n in names if n != "Zulu"]


async def test_writes_bind_their_values_through_the_cache(store) -> None:
    async with store.unit_of_work(actor_id=None) as uow:
        for n in range(3):
            uow.emit("locations", "created", object_id=n, data={"n": n, "say": "100%"})
    async with store.connection() as conn:
        await conn.execute(events.update().where(events.c.object_id == 1).values(action="updated"))
        rows = await conn.fetch_all(sa.select(events).order_by(events.c.id))
    assert [(r["object_id"], r["action"]) for r in rows] == [
        (0, "created"),
        (1, "updated"),
        (2, "created"),
    ]
    assert [r["data"] for r in rows] == [f'{{"n":{n},"say":"100%"}}' for n in range(3)]


async def test_text_statements_bind_their_values(store) -> None:
    ids = await _add_locations(store, ["Alpha", "Bravo"])
    query = "SELECT id FROM locations WHERE name = :name"
    async with store.connection() as conn:
        assert await conn.fetch_val(query, {"name": "Bravo"}) == ids["Bravo"]
        assert await conn.fetch_val(query, {"name": "Alpha"}) == ids["Alpha"]


BY_NAME_AFTER = sa.select(locations.c.id, locations.c.created_at).where(
    locations.c.name == sa.bindparam("name"),
    locations.c.created_at >= sa.bindparam("since"),
    locations.c.timezone == "UTC",  # a literal value next to the placeholders
)


async def test_prebuilt_statements_take_named_values(store) -> None:
    ids = await _add_locations(store, ["Alpha", "Bravo"])
    async with store.connection() as conn:
        bravo = await conn.fetch_one(bound(BY_NAME_AFTER, name="Bravo", since=T0))
        alpha = await conn.fetch_all(bound(BY_NAME_AFTER, name="Alpha", since=T0))
        too_late = await conn.fetch_one(
            bound(BY_NAME_AFTER, name="Alpha", since=T0 + timedelta(seconds=1))
        )
    assert bravo["id"] == ids["Bravo"] and bravo["created_at"] == T0 + timedelta(minutes=1)
    assert [row["id"] for row in alpha] == [ids["Alpha"]]
    assert too_late is None


def _named_in(timezone: str) -> sa.Select:
    """Same shape whatever `timezone`: only the literal differs."""
    return sa.select(locations.c.name).where(
        locations.c.created_at >= sa.bindparam("since"), locations.c.timezone == timezone
    )


async def test_prebuilt_statements_of_one_shape_keep_their_own_literals(store) -> None:
    """Statements built once are bound by identity: each binds its own literal values even
    when another object of the same shape was compiled first."""
    await _add_locations(store, ["Alpha"])
    async with store.unit_of_work(actor_id=None) as uow:
        await uow.conn.execute(
            locations.insert().values(
                name="Paris", code="PAR", timezone="Europe/Paris", created_at=T0,
                updated_at=T0,
            )
        )  # fmt: skip
    in_utc, in_paris = _named_in("UTC"), _named_in("Europe/Paris")
    async with store.connection() as conn:
        for _ in range(2):  # compiled by the first, then each found by identity
            utc = await conn.fetch_all(bound(in_utc, since=T0))
            paris = await conn.fetch_all(bound(in_paris, since=T0))
            assert [row["name"] for row in utc] == ["Alpha"]
            assert [row["name"] for row in paris] == ["Paris"]
    statements = _statements(store)
    assert {id(in_utc), id(in_paris)} <= statements._prepared.keys()
    assert statements.lookup(in_utc)[0] is statements.lookup(in_paris)[0]  # one compile


async def test_prebuilt_statements_check_required_values_and_take_defaults(store) -> None:
    ids = await _add_locations(store, ["Alpha", "Bravo"])
    query = sa.select(locations.c.id).where(
        locations.c.name == sa.bindparam("name", value="Bravo", required=False)
    )
    async with store.connection() as conn:
        assert (await conn.fetch_one(bound(query)))["id"] == ids["Bravo"]
        assert (await conn.fetch_one(bound(query, name="Alpha")))["id"] == ids["Alpha"]
        with pytest.raises(sa.exc.InvalidRequestError, match="since"):
            await conn.fetch_one(bound(BY_NAME_AFTER, name="Alpha"))


async def test_prebuilt_statements_with_in_lists_fall_back(store) -> None:
    ids = await _add_locations(store, ["Alpha", "Bravo", "Charlie"])
    query = sa.select(locations.c.id).where(
        locations.c.name.in_(sa.bindparam("names", expanding=True))
    )
    async with store.connection() as conn:
        rows = await conn.fetch_all(bound(query, names=["Alpha", "Charlie"]))
        one = await conn.fetch_one(bound(query, names=["Bravo"]))
    assert sorted(row["id"] for row in rows) == sorted([ids["Alpha"], ids["Charlie"]])
    assert one["id"] == ids["Bravo"]


async def test_rows_read_by_name_position_and_column(store) -> None:
    async with store.unit_of_work(actor_id=None) as uow:
        await uow.record_history("locations", 7, {"name": ["A", "B"]})
    async with store.connection() as conn:
        rows = await conn.fetch_all(sa.select(history).where(history.c.subject_id == 7))
        again = await conn.fetch_one(sa.select(history).where(history.c.subject_id == 7))
    row = rows[0]
    assert row["changes"] == {"name": ["A", "B"]}  # JSON text converted, as before
    assert again["changes"] == {"name": ["A", "B"]}
    assert row[history.c.subject] == "locations" and row[history.c.subject_id] == 7
    assert row[1] == "locations" and row["at"].tzinfo is not None
    assert list(row.keys()) == [c.name for c in history.columns]
    assert row._mapping["subject"] == "locations"


async def test_iterate_fetches_in_batches_and_may_stop_early(store, monkeypatch) -> None:
    """`iterate` (a cursor, ITERATE_BATCH rows a FETCH): every row across batch ends, the
    last batch full or not; a caller that stops early (and closes it) leaves the connection
    usable."""
    if not store.is_postgres:
        pytest.skip("the cursor path is PostgreSQL's")
    monkeypatch.setattr(compiled_cache, "ITERATE_BATCH", 2)
    async with store.connection() as conn:
        for count in (0, 1, 4, 5):
            async with conn.transaction():
                got = [row["n"] async for row in conn.iterate(_series(count))]
            assert got == list(range(1, count + 1))
        async with conn.transaction(), aclosing(conn.iterate(_series(9))) as rows:
            async for row in rows:
                if row["n"] == 3:
                    break
        assert await conn.fetch_val("SELECT 7") == 7


def _series(count: int) -> sa.Select:
    """1..count, as rows of `n`."""
    upto = sa.cast(sa.literal(count), sa.Integer)
    return sa.select(sa.func.generate_series(sa.cast(sa.literal(1), sa.Integer), upto).label("n"))
