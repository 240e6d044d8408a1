"""JSON Lines out of one backend and into the other; bad files report line and field and
write nothing; the frontend's mock shapes (names instead of ids) load too."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from db.store import Store
from db.tables import metadata
from domain.transfer.export import export_lines
from domain.transfer.load import load_lines
from tests.backup.world import client_for, drop_database, new_database, running_app, seed, snapshot
from tests.conftest import TEST_PASSWORD

pytestmark = pytest.mark.timeout(120)


def _comparable(seen: dict[str, Any]) -> dict[str, Any]:
    """History is not carried by an export; image URLs are new names for the same bytes."""
    out = {k: v for k, v in seen.items() if not k.endswith("/history") and not k.startswith("/")}
    images = {url: content for url, content in seen.items() if url.startswith(("/", "http"))}
    for profile in out["profiles"]:
        url = profile["profile_image"]
        profile["profile_image"] = images.get(url) if url else None
    return {k: v for k, v in out.items() if not isinstance(v, bytes)}


async def _admin_token(app) -> str:
    async with client_for(app) as anonymous:
        response = await anonymous.post(
            "/api/auth/token/", json={"username": "ada", "password": TEST_PASSWORD}
        )
    assert response.status_code == 200, response.text  # the password hash came along
    return response.json()["access"]


async def test_sqlite_export_imports_into_postgresql(tmp_path: Path) -> None:
    source = await new_database("sqlite", tmp_path)
    async with running_app(source, tmp_path / "a") as app:
        token = await seed(app)
        before = await snapshot(app, token)
        store: Store = app.state.store
        lines = [line async for line in export_lines(store, media_root=tmp_path / "a" / "media")]
    assert all(json.loads(line)["type"] for line in lines)

    target = await new_database("postgres", tmp_path)
    try:
        async with running_app(target, tmp_path / "b") as app:
            report = await load_lines(app.state.store, lines, media_root=tmp_path / "b" / "media")
            assert report.errors == []
            assert report.created["profiles"] == 2 and report.created["profile-images"] == 1
            after = await snapshot(app, await _admin_token(app))
    finally:
        await drop_database(target)
    assert _comparable(after) == _comparable(before)


async def _counts(store: Store) -> dict[str, int]:
    async with store.connection() as conn:
        return {
            t.name: int(await conn.fetch_val(sa.select(sa.func.count()).select_from(t)))
            for t in metadata.sorted_tables
        }


def _jsonl(*rows: tuple[str, dict[str, Any]]) -> list[bytes]:
    return [json.dumps({"type": t, "data": d}).encode() + b"\n" for t, d in rows]


MOCK = _jsonl(
    (
        "locations",
        {"id": 10, "name": "Broadcasting House", "code": "BH", "timezone": "Europe/London"},
    ),
    ("profiles", {"id": 3, "user": 7, "username": "otto", "role": "operator", "location": 10}),
    (
        "facilities",
        {"id": 4, "name": "Studio A", "location": "Broadcasting House", "kind": "studio"},
    ),
    ("incident-types", {"name": "Loss of signal", "default_priority": "critical"}),
    (
        "incident-tickets",
        {
            "title": "Dead air",
            "incident_type": "Loss of signal",
            "facility": 4,
            "reported_by": "otto",
        },
    ),
    (
        "shifts",
        {
            "user": 7,
            "facility": "Studio A",
            "start": "2026-07-01T23:30:00Z",  # 00:30 on 2 July in London (BST)
            "end": "2026-07-02T07:30:00Z",
        },
    ),
)


async def test_mock_shapes_load_with_references_by_name(backend: str, tmp_path: Path) -> None:
    url = await new_database(backend, tmp_path)
    store = Store(url)
    await store.connect()
    try:
        dry = await load_lines(store, MOCK, media_root=tmp_path, dry_run=True)
        assert dry.errors == [] and dry.created["shifts"] == 1
        assert (await _counts(store))["shifts"] == 0  # a dry run writes nothing
        report = await load_lines(store, MOCK, media_root=tmp_path)
        assert report.errors == []
        async with store.connection() as conn:
            ticket = await conn.fetch_one(sa.text("SELECT number, priority FROM incident_tickets"))
            days = await conn.fetch_one(
                sa.text("SELECT local_first_day, local_last_day FROM shifts")
            )
        assert (ticket["number"], ticket["priority"]) == (
            "INC-000001",
            "critical",
        )  # numbered, type's default priority
        # The days time off's conflicts compare with are the facility's (London), not UTC's.
        assert [str(days[0]), str(days[1])] == ["2026-07-02", "2026-07-02"]
        again = await load_lines(store, MOCK[:4], media_root=tmp_path)
        assert again.created == {} and again.matched["locations"] == 1  # reused by natural key
    finally:
        await store.disconnect()
        await drop_database(url)


async def test_bad_rows_report_line_and_field_and_write_nothing(
    backend: str, tmp_path: Path
) -> None:
    url = await new_database(backend, tmp_path)
    store = Store(url)
    await store.connect()
    bad = [
        *MOCK[:2],
        *_jsonl(("locations", {"name": "Nowhere", "code": "NW", "timezone": "Mars/Olympus"})),
        b"{not json\n",
        *_jsonl(
            ("facilities", {"name": "Studio B", "location": 999, "kind": "studio"}),
            (
                "shifts",
                {"user": "nobody", "facility": 4, "start": "2026-12-01T08:00:00", "end": "x"},
            ),
            ("spaceships", {}),
            ("locations", {"name": "Elsewhere", "code": "BH", "timezone": "Europe/London"}),
        ),
    ]
    try:
        report = await load_lines(store, bad, media_root=tmp_path)
        where = {(e.line, e.field) for e in report.errors}
        expected = {(3, "timezone"), (4, "line"), (5, "location"), (6, "user"), (7, "type")}
        assert expected | {(8, "code")} <= where  # line 8: the code of line 1, unique
        assert any(e.line == 6 and e.field in ("facility", "start", "end") for e in report.errors)
        assert all(n == 0 for n in (await _counts(store)).values())  # lines 1-2 were fine
    finally:
        await store.disconnect()
        await drop_database(url)
