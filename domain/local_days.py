"""The days a shift covers at its facility, stored with the shift.

A time-off request names days, and its `conflicting_shifts` are the requester's live shifts
that overlap those days *at each shift's facility* (a night shift in Tokyo is on another
day than in London). Each shift row keeps its first and last local day
(`local_first_day`, `local_last_day`, by the rule in db/local_days.py), written here on
every write of the shift and recounted whenever its days move (a facility to another
location, a location to another time zone): a conflict is then a comparison of dates in
SQL, the same on PostgreSQL and SQLite, with no time zones in the query.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from databases.core import Connection

from db.local_days import covered_days
from db.tables import facilities, locations, shifts
from domain.recurrence import facility_timezone


async def shift_columns(conn: Connection, values: Mapping[str, Any]) -> dict[str, dt.date]:
    """The local-day columns for a shift row about to be written (`facility_id`, `start`,
    `end` in `values`)."""
    zone = await facility_timezone(conn, facility_id=values["facility_id"])
    if zone is None:
        raise LookupError(f"facility {values['facility_id']} does not exist")
    return covered_days(values["start"], values["end"], zone)


def shifts_at_site(
    *columns: sa.ColumnElement[Any], facility_id: int | None, location_id: int | None
) -> sa.Select[Any]:
    """`columns` of the shifts at the facility, or at any facility of the location (the
    shifts whose local days a facility's move or a location's new time zone moves)."""
    s, f = shifts, facilities
    query = sa.select(*columns).select_from(
        s.join(f, f.c.id == s.c.facility_id).join(locations, locations.c.id == f.c.location_id)
    )
    if facility_id is not None:
        query = query.where(s.c.facility_id == facility_id)
    if location_id is not None:
        query = query.where(f.c.location_id == location_id)
    return query


async def recount(
    conn: Connection, *, facility_id: int | None = None, location_id: int | None = None
) -> int:
    """Recompute the stored days of every shift at the facility or at the location's
    facilities (after a facility moved, or a location's time zone changed): one UPDATE per
    pair of days that changed. Returns the number of shifts whose days changed."""
    s = shifts
    query = shifts_at_site(
        s.c.id,
        s.c.start,
        s.c.end,
        s.c.local_first_day,
        s.c.local_last_day,
        locations.c.timezone,
        facility_id=facility_id,
        location_id=location_id,
    )
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
