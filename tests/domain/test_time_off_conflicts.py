"""The days a shift covers at its facility, which time-off conflicts compare dates against."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pytest

from db.local_days import covered_days, local_midnight_secs
from domain.time_off import conflicting_shift_ids

ZONES = (
    "UTC", "Europe/London", "Asia/Tokyo", "Pacific/Kiritimati", "Pacific/Pago_Pago",
    "America/Havana", "America/St_Johns", "Australia/Lord_Howe", "Asia/Kathmandu",
)  # fmt: skip


def _days(start: datetime, end: datetime, zone: str) -> tuple[date, date]:
    days = covered_days(start, end, zone)
    return days["local_first_day"], days["local_last_day"]


def _overlaps(start: datetime, end: datetime, day: date, zone: str) -> bool:
    """The rule stated plainly: the shift overlaps the day's local midnight-to-midnight."""
    day_start = local_midnight_secs(day.toordinal(), zone)
    day_end = local_midnight_secs(day.toordinal() + 1, zone)
    return start.timestamp() < day_end and end.timestamp() > day_start


def test_days_are_local_to_each_facility() -> None:
    # 23:00-01:00 UTC: 1-2 Dec in London, but 2 Dec 08:00-10:00 in Tokyo.
    start, end = datetime(2026, 12, 1, 23, tzinfo=UTC), datetime(2026, 12, 2, 1, tzinfo=UTC)
    assert _days(start, end, "Europe/London") == (date(2026, 12, 1), date(2026, 12, 2))
    assert _days(start, end, "Asia/Tokyo") == (date(2026, 12, 2), date(2026, 12, 2))


def test_a_shift_ending_at_midnight_is_not_on_the_next_day() -> None:
    start, end = datetime(2026, 12, 1, 16, tzinfo=UTC), datetime(2026, 12, 2, tzinfo=UTC)
    assert _days(start, end, "UTC") == (date(2026, 12, 1), date(2026, 12, 1))
    later = end + timedelta(microseconds=1)
    assert _days(start, later, "UTC") == (date(2026, 12, 1), date(2026, 12, 2))


def test_midnights_that_dst_skips_or_repeats() -> None:
    # Havana moves its clocks at midnight: 2024-03-10 has no 00:00, 2024-11-03 two of them.
    for day in (date(2024, 3, 10), date(2024, 11, 3)):
        for hour in range(-6, 30):
            start = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(hours=hour)
            first, last = _days(start, start + timedelta(hours=3), "America/Havana")
            for offset in range(-2, 3):
                candidate = day + timedelta(days=offset)
                expected = _overlaps(start, start + timedelta(hours=3), candidate, "America/Havana")
                assert (first <= candidate <= last) == expected, (start, candidate)


@pytest.mark.parametrize("seed", range(4))
def test_stored_days_give_exactly_the_days_a_shift_overlaps(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(500):
        zone = rng.choice(ZONES)
        start = datetime(2020, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(10**8))
        end = start + timedelta(seconds=rng.randrange(1, 24 * 3600 + 1))
        first, last = _days(start, end, zone)
        for offset in range(-3, 4):
            day = (start + timedelta(days=offset)).date()
            assert (first <= day <= last) == _overlaps(start, end, day, zone), (start, end, zone)


def test_the_calendars_ends_are_clamped() -> None:
    # Rows written by hand past the API's limits: the days stay dates.
    start = datetime(9999, 12, 31, 20, tzinfo=UTC)
    assert _days(start, datetime.max.replace(tzinfo=UTC), "Pacific/Kiritimati") == (
        date.max,
        date.max,
    )
    start = datetime.min.replace(tzinfo=UTC)
    assert _days(start, start + timedelta(hours=2), "Pacific/Pago_Pago") == (date.min, date.min)


def test_joined_ids_are_read_in_order() -> None:
    assert conflicting_shift_ids("12;3;7") == [3, 7, 12]
    assert conflicting_shift_ids(None) == []
    assert conflicting_shift_ids("") == []
