"""Who is away on a day: names only, for screens everyone may read (never kind or reason)."""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlalchemy as sa
from databases.core import Connection

from db.tables import profiles, time_off_requests, users


def _name(row: Any) -> str:
    return f"{row['first_name']} {row['last_name']}".strip() or row["username"]


async def away_on(conn: Connection, *, day: date, location_id: int | None) -> list[dict[str, Any]]:
    """Active users with approved time off covering `day`, optionally of one site, by name.

    Time-off requests are private (owner and managers); that someone is away is not: the
    control room plans around it. So only the user and the name leave this function.
    """
    query = (
        sa.select(users.c.id, users.c.username, users.c.first_name, users.c.last_name)
        .select_from(
            time_off_requests.join(users, users.c.id == time_off_requests.c.user_id).outerjoin(
                profiles, profiles.c.user_id == users.c.id
            )
        )
        .where(
            time_off_requests.c.status == "approved",
            time_off_requests.c.start_date <= day,
            time_off_requests.c.end_date >= day,
            users.c.is_active.is_(True),
        )
        .distinct()
    )
    if location_id is not None:
        query = query.where(profiles.c.location_id == location_id)
    rows = await conn.fetch_all(query)
    people = [{"user": row["id"], "name": _name(row)} for row in rows]
    return sorted(people, key=lambda person: (person["name"].lower(), person["user"]))
