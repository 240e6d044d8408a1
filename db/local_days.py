"""The rule for the days a shift covers at its facility (`shifts.local_first_day`,
`shifts.local_last_day`): the days whose local midnight-to-midnight the shift overlaps.

Pure calendar arithmetic, kept beside the tables like `search_text`'s expression, so the
migration that fills the columns and every writer use one rule (domain/local_days.py
writes them). Local midnight is `zoneinfo`'s, which resolves a midnight that DST skips or
repeats its own way; SQLite has no time zones, so the rule is not SQL.
"""

from __future__ import annotations

import datetime as dt
import functools
from zoneinfo import ZoneInfo

DAY_SECS = 24 * 3600
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_EPOCH_ORDINAL = _EPOCH.date().toordinal()
_FIRST, _LAST = dt.date.min.toordinal(), dt.date.max.toordinal()
_SECOND = dt.timedelta(seconds=1)

# Days x zones whose local midnight is kept: shifts come in runs of the same few.
MIDNIGHTS_CACHED = 4096


@functools.lru_cache(maxsize=MIDNIGHTS_CACHED)
def local_midnight_secs(ordinal: int, zone_name: str) -> int:
    """Epoch seconds of a day's local midnight, in whole-number arithmetic.

    Stored rows may sit on the calendar's last day, where `date + 1 day` or a UTC conversion
    overflows Python's datetime; the zone's offset is read at the nearest representable day.
    """
    nearest = dt.date.fromordinal(min(max(ordinal, _FIRST), _LAST))
    offset = ZoneInfo(zone_name).utcoffset(dt.datetime.combine(nearest, dt.time()))
    return (ordinal - _EPOCH_ORDINAL) * DAY_SECS - int((offset or dt.timedelta()).total_seconds())


def _last_day_starting_by(secs: int, zone_name: str) -> int:
    """The ordinal of the last local day whose midnight is at or before `secs`."""
    ordinal = secs // DAY_SECS + _EPOCH_ORDINAL  # the UTC day: within a day of the answer
    while local_midnight_secs(ordinal + 1, zone_name) <= secs:
        ordinal += 1
    while local_midnight_secs(ordinal, zone_name) > secs:
        ordinal -= 1
    return ordinal


def _floor_secs(moment: dt.datetime, *, negated: bool = False) -> int:
    """Whole epoch seconds at or before `moment` (of `-moment` when `negated`). A naive
    value is UTC: asyncpg reads PostgreSQL's `infinity` as a naive `datetime.max`."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return ((_EPOCH - moment) if negated else (moment - _EPOCH)) // _SECOND


def _as_date(ordinal: int) -> dt.date:
    """Clamped to the calendar: only rows written outside the API's limits reach its ends."""
    return dt.date.fromordinal(min(max(ordinal, _FIRST), _LAST))


def covered_days(start: dt.datetime, end: dt.datetime, zone_name: str) -> dict[str, dt.date]:
    """The shift's first and last local day at a facility in `zone_name`, as its columns.

    [start, end) overlaps local days first..last exactly: day D with D <= last and
    D >= first is the test `start < midnight(D + 1) and end > midnight(D)`.
    """
    first = _last_day_starting_by(_floor_secs(start), zone_name)
    # The last day whose midnight comes before `end`: at or before its last whole second.
    end_secs = -_floor_secs(end, negated=True)  # rounded up
    last = _last_day_starting_by(end_secs - 1, zone_name)
    return {"local_first_day": _as_date(first), "local_last_day": _as_date(last)}
