"""Private rows (time entries, time off): visible to their owner and to managers only."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from domain.actors import Actor


def visible_to(actor: Actor, owner_column: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
    """WHERE clause for the rows `actor` may read; REST lists, details and counts share it."""
    if actor.is_manager:
        return sa.true()
    return owner_column == actor.id
