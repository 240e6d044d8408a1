"""The days a shift covers at its facility, stored with the shift.

A time-off request names days, and its `conflicting_shifts` are the requester's live shifts
that overlap those days *at each shift's facility* (a night shift in Tokyo is on another
day than in London). Each shift row keeps its first and last local day
(`local_first_day`, `local_last_day`), computed here, in Python, on every write of the
shift and whenever its days move (a facility to another location, a location to another
time zone): a conflict is then a comparison of dates in SQL, the same on PostgreSQL and
SQLite, with no time zones in the query (SQLite has none) and one rule for local midnight
(`zoneinfo`'s, which resolves a midnight that DST skips or repeats its own way).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import defaultdict
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from databases.core import Connection

from db.tables import facilities, locations, shifts

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


async def facility_zone(conn: Connection, facility_id: int) -> str:
    """The IANA zone a facility's shifts are counted in (its location's)."""
    zone: str | None = await conn.fetch_val(
        sa.select(locations.c.timezone)
        .select_from(facilities.join(locations, locations.c.id == facilities.c.location_id))
        .where(facilities.c.id == facility_id)
    )
    if zone is None:
        raise LookupError(f"facility {facility_id} does not exist")
    return zone


async def shift_columns(conn: Connection, values: Mapping[str, Any]) -> dict[str, dt.date]:
    """The local-day columns for a shift row about to be written (`facility_id`, `start`,
    `end` in `values`)."""
    zone = await facility_zone(conn, values["facility_id"])
    return covered_days(values["start"], values["end"], zone)


async def recount(
    conn: Connection, *, facility_id: int | None = None, location_id: int | None = None
) -> int:
    """Recompute the stored days of every shift at the facility or at the location's
    facilities (after a facility moved, or a location's time zone changed): one UPDATE per
    pair of days that changed. Returns the number of shifts whose days changed."""
    s, f = shifts, facilities
    query = sa.select(
        s.c.id, s.c.start, s.c.end, s.c.local_first_day, s.c.local_last_day, locations.c.timezone
    ).select_from(s.join(f, f.c.id == s.c.facility_id).join(locations))
    if facility_id is not None:
        query = query.where(f.c.id == facility_id)
    if location_id is not None:
        query = query.where(f.c.location_id == location_id)
    moved: dict[tuple[dt.date, dt.date], list[int]] = defaultdict(list)
    for row in await conn.fetch_all(query):
        days = covered_days(row["start"], row["end"], row["timezone"])
        pair = (days["local_first_day"], days["local_last_day"])
        if pair != (row["local_first_day"], row["local_last_day"]):
            moved[pair].append(row["id"])
    for (first, last), ids in moved.items():
        await conn.execute(
            s.update().where(s.c.id.in_(ids)).values(local_first_day=first, local_last_day=last)
        )
    return sum(len(ids) for ids in moved.values())
