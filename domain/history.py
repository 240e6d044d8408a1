"""Reading history entries (who changed which fields when), oldest first."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from db.tables import history
from db.types import Row


def serialize(row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "actor": row["actor_id"],
        "at": row["at"],
        "changes": row["changes"],
    }


def list_query(*, subject: str, subject_id: int) -> sa.Select[Any]:
    """The entries of one object; `subject` is its resource's topic name."""
    return sa.select(history).where(
        history.c.subject == subject, history.c.subject_id == subject_id
    )
