"""Series materialization: rolling horizon, idempotence, UNTIL/COUNT/EXDATE, DST, overlaps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from db.store import Store
from db.tables import notifications, scheduled_event_attendees, scheduled_events, shifts
from domain.series import MAX_OCCURRENCES_PER_PASS, materialize_all, materialize_one, occurrences
from tests.tasks.builders import make_facility, make_series, make_shift


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_weekly_keeps_wall_clock_across_london_dst() -> None:
    """09:00 London every Sunday: 09:00Z in winter, 08:00Z after the last Sunday of March."""
    got = occurrences(
        "FREQ=WEEKLY;BYDAY=SU", dtstart=_utc(2026, 3, 22, 9), timezone="Europe/London",
        after=_utc(2026, 3, 1), until=_utc(2026, 4, 6),
    )  # fmt: skip
    assert got == [_utc(2026, 3, 22, 9), _utc(2026, 3, 29, 8), _utc(2026, 4, 5, 8)]
    back = occurrences(
        "FREQ=DAILY", dtstart=_utc(2026, 10, 24, 8), timezone="Europe/London",
        after=_utc(2026, 10, 1), until=_utc(2026, 10, 26, 12),
    )  # fmt: skip
    assert back == [_utc(2026, 10, 24, 8), _utc(2026, 10, 25, 9), _utc(2026, 10, 26, 9)]


def test_time_in_spring_gap_and_autumn_overlap() -> None:
    """01:30 London does not exist on 29 March 2026 and happens twice on 25 October."""
    spring = occurrences(
        "FREQ=DAILY;COUNT=3", dtstart=_utc(2026, 3, 28, 1, 30), timezone="Europe/London",
        after=_utc(2026, 3, 1), until=_utc(2026, 4, 1),
    )  # fmt: skip
    # 28th 01:30 GMT; 29th the gap moves it to 02:30 BST (01:30Z); 30th 01:30 BST.
    assert spring == [_utc(2026, 3, 28, 1, 30), _utc(2026, 3, 29, 1, 30), _utc(2026, 3, 30, 0, 30)]
    autumn = occurrences(
        "FREQ=DAILY;COUNT=2", dtstart=_utc(2026, 10, 24, 0, 30), timezone="Europe/London",
        after=_utc(2026, 10, 1), until=_utc(2026, 11, 1),
    )  # fmt: skip
    assert autumn == [_utc(2026, 10, 24, 0, 30), _utc(2026, 10, 25, 0, 30)]  # first 01:30 (BST)


def test_until_count_exdate() -> None:
    start = _utc(2026, 1, 5, 9)
    kwargs: dict[str, Any] = {"dtstart": start, "timezone": "UTC", "after": _utc(2026, 1, 1),
                              "until": _utc(2026, 3, 1)}  # fmt: skip
    assert len(occurrences("FREQ=WEEKLY;COUNT=3", **kwargs)) == 3
    assert occurrences("FREQ=WEEKLY;UNTIL=20260119T090000Z", **kwargs)[-1] == _utc(2026, 1, 19, 9)
    got = occurrences("RRULE:FREQ=DAILY;COUNT=4\nEXDATE:20260106T090000Z,20260107", **kwargs)
    assert got == [_utc(2026, 1, 5, 9), _utc(2026, 1, 8, 9)]
    got = occurrences("RRULE:FREQ=DAILY;COUNT=3\nEXDATE;TZID=UTC:20260106T090000", **kwargs)
    assert got == [_utc(2026, 1, 5, 9), _utc(2026, 1, 7, 9)]
    with pytest.raises(ValueError):
        occurrences("EXDATE:20260106T090000Z", **kwargs)


def test_one_pass_is_bounded_in_count() -> None:
    """A rule with an occurrence every minute stops at the cap instead of listing 86,400 a day."""
    every_minute = (
        "FREQ=DAILY;BYHOUR="
        + ",".join(map(str, range(24)))
        + ";BYMINUTE="
        + ",".join(map(str, range(60)))
    )
    got = occurrences(
        every_minute, dtstart=_utc(2026, 1, 5), timezone="UTC",
        after=_utc(2026, 1, 1), until=_utc(2026, 3, 1),
    )  # fmt: skip
    assert len(got) <= MAX_OCCURRENCES_PER_PASS


async def test_materialize_horizon_idempotent_and_rolling(make_user: Any, store: Store) -> None:
    user = await make_user("operator")
    facility = await make_facility(store)
    series_id = await make_series(
        store, rrule="FREQ=DAILY", dtstart=_utc(2026, 3, 1, 6),
        template={"user": user["user"], "facility": facility, "position": "MCR", "notes": "n"},
    )  # fmt: skip
    now = _utc(2026, 3, 1)
    first = await materialize_one(store, series_id=series_id, horizon_days=7, now=now)
    assert len(first.created) == 7  # 1st..7th 06:00, horizon ends 8th 00:00
    again = await materialize_all(store, horizon_days=7, now=now)
    assert again == []  # nothing due: the horizon is already covered
    repeat = await materialize_one(store, series_id=series_id, horizon_days=8, now=now)
    assert len(repeat.created) == 1  # only the 8th is new
    async with store.connection() as conn:
        rows = await conn.fetch_all(
            sa.select(shifts).where(shifts.c.series_id == series_id).order_by(shifts.c.start)
        )
    assert len(rows) == 8 and len({r["start"] for r in rows}) == 8
    assert rows[0]["start"] == _utc(2026, 3, 1, 6) and rows[0]["end"] == _utc(2026, 3, 1, 14)
    assert rows[-1]["start"] == _utc(2026, 3, 8, 6)
    # After the DST change (29 March) the wall-clock time stays 06:00 London.
    later = await materialize_one(store, series_id=series_id, horizon_days=7, now=_utc(2026, 3, 28))
    async with store.connection() as conn:
        starts = [r[0] for r in await conn.fetch_all(
            sa.select(shifts.c.start).where(shifts.c.id.in_(later.created)).order_by(shifts.c.start)
        )]  # fmt: skip
    assert _utc(2026, 3, 28, 6) in starts and _utc(2026, 3, 30, 5) in starts
    assert all(r["status"] == "scheduled" and r["position"] == "MCR" for r in rows)


async def test_overlap_skipped_and_managers_notified(make_user: Any, store: Store) -> None:
    user = await make_user("operator")
    manager = await make_user("manager")
    facility = await make_facility(store)
    await make_shift(store, user_id=user["user"], facility_id=facility, start=_utc(2026, 3, 3, 10))
    series_id = await make_series(
        store, rrule="FREQ=DAILY;COUNT=4", dtstart=_utc(2026, 3, 1, 6),
        template={"user_id": user["user"], "facility_id": facility},
    )  # fmt: skip
    report = await materialize_one(
        store, series_id=series_id, horizon_days=28, now=_utc(2026, 3, 1)
    )
    assert len(report.created) == 3 and report.skipped == [_utc(2026, 3, 3, 6)]
    async with store.connection() as conn:
        notes = await conn.fetch_all(
            sa.select(notifications).where(notifications.c.kind == "series_conflict")
        )
    assert {n["user_id"] for n in notes} == {manager["user"]}
    assert "2026-03-03 06:00" in notes[0]["body"]


async def test_event_series_copies_template_and_attendees(make_user: Any, store: Store) -> None:
    a, b = await make_user("operator"), await make_user("operator")
    facility = await make_facility(store)
    series_id = await make_series(
        store, kind="scheduled_event", rrule="FREQ=WEEKLY;COUNT=2", dtstart=_utc(2026, 3, 2, 10),
        duration_secs=3600,
        template={"title": "Standup", "kind": "meeting", "facility": facility,
                  "attendees": [a["user"], b["user"]]},
    )  # fmt: skip
    report = await materialize_one(
        store, series_id=series_id, horizon_days=28, now=_utc(2026, 3, 1)
    )
    assert len(report.created) == 2
    async with store.connection() as conn:
        rows = await conn.fetch_all(sa.select(scheduled_events).order_by(scheduled_events.c.start))
        attendees = await conn.fetch_all(sa.select(scheduled_event_attendees))
    assert [r["title"] for r in rows] == ["Standup", "Standup"]
    assert rows[0]["end"] - rows[0]["start"] == timedelta(hours=1)
    assert len(attendees) == 4


async def test_series_created_through_the_api_across_dst(
    login: Any, store: Store, clock: Any
) -> None:
    """POST /api/shifts/ with `recurrence` at a London site; the job adds the other 5 weeks."""
    from tests.builders.facilities import make_facility as api_facility

    clock.now = _utc(2026, 3, 16)  # tokens are issued and checked against this clock too
    manager = await login("manager")
    operator = await login("operator")
    facility = await api_facility(manager)  # Europe/London
    first_start = _utc(2026, 3, 16, 9)  # 09:00 GMT, two weeks before the clocks go forward
    response = await manager.post(
        "/api/shifts/",
        json={
            "user": operator.user["user"], "facility": facility["id"], "position": "MCR",
            "start": first_start.isoformat(), "end": _utc(2026, 3, 16, 17).isoformat(),
            "recurrence": "FREQ=WEEKLY;COUNT=6",
        },
    )  # fmt: skip
    assert response.status_code == 201, response.text
    series_id = response.json()["series"]
    await materialize_all(store, horizon_days=60)
    await materialize_all(store, horizon_days=60)  # idempotent
    got = await manager.get(f"/api/shifts/?series={series_id}&ordering=start")
    assert got.status_code == 200, got.text
    listed = got.json()
    starts = [datetime.fromisoformat(s["start"]) for s in listed["results"]]
    assert listed["count"] == 6
    assert starts[:2] == [first_start, _utc(2026, 3, 23, 9)]
    assert starts[2:] == [_utc(2026, 3, 30, 8), _utc(2026, 4, 6, 8), _utc(2026, 4, 13, 8),
                          _utc(2026, 4, 20, 8)]  # fmt: skip
    assert all(s["position"] == "MCR" and s["series"] == series_id for s in listed["results"])
