"""Ticket priorities and their severity rank, shared by the tables (an index) and the domain."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

PRIORITIES = ("low", "medium", "high", "critical")


def priority_rank(column: sa.ColumnElement[Any]) -> sa.ColumnElement[int]:
    """Order priorities by severity (low < critical), not alphabetically.

    Every name and rank is SQL literal text, never a bound parameter: PostgreSQL uses an
    expression index only for the very expression it was built on, constants included (and
    a bound rank in THEN would be typed like the column: text).
    """
    whens: list[tuple[sa.ColumnElement[bool], sa.ColumnElement[Any]]] = [
        (column == sa.literal_column(f"'{name}'"), sa.literal_column(str(rank)))
        for rank, name in enumerate(PRIORITIES)
    ]
    return sa.case(*whens, else_=sa.literal_column("-1"))
