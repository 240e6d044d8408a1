"""Which shifts a time-off request conflicts with: days at each shift's facility."""

from __future__ import annotations

from datetime import UTC, date, datetime

from domain.time_off import conflicting_shift_ids


def _candidate(shift_id: int, start: datetime, end: datetime, zone: str) -> str:
    return f"{shift_id}|{int(start.timestamp())}|{int(end.timestamp())}|{zone}"


def test_days_are_local_to_each_facility() -> None:
    # 23:00-01:00 UTC: 1-2 Dec in London, but 2 Dec 08:00-10:00 in Tokyo.
    start, end = datetime(2026, 12, 1, 23, tzinfo=UTC), datetime(2026, 12, 2, 1, tzinfo=UTC)
    candidates = ";".join(
        [_candidate(1, start, end, "Europe/London"), _candidate(2, start, end, "Asia/Tokyo")]
    )
    assert conflicting_shift_ids(candidates, date(2026, 12, 1), date(2026, 12, 1)) == [1]
    assert conflicting_shift_ids(candidates, date(2026, 12, 2), date(2026, 12, 2)) == [1, 2]
    assert conflicting_shift_ids(candidates, date(2026, 12, 3), date(2026, 12, 9)) == []


def test_no_candidates() -> None:
    assert conflicting_shift_ids(None, date(2026, 12, 1), date(2026, 12, 1)) == []
    assert conflicting_shift_ids("", date(2026, 12, 1), date(2026, 12, 1)) == []
