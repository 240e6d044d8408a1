"""Statements built once with placeholders, run with each call's values (`bound`).

Public API only (SQLAlchemy's visitors): both database paths accept these. The fast
path (db/compiled_cache.py) binds the values into a statement compiled once per shape;
the plain path fills them in with `Bound.plain()` and lets `databases` compile it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.sql import ClauseElement, visitors
from sqlalchemy.sql.elements import BindParameter


@dataclass(frozen=True, slots=True)
class Bound:
    """A statement built once with `sa.bindparam` placeholders, and one execution's values."""

    statement: ClauseElement
    values: Mapping[str, Any]

    def plain(self) -> ClauseElement:
        """A copy of the statement with the values in its placeholders (the uncached path).

        Not `statement.params()`: SQLAlchemy 2.1 keeps those values aside, and `databases`'
        compile (`render_postcompile`) refuses statements that carry them.
        """

        def fill(bind: BindParameter[Any]) -> None:
            if bind.key in self.values:  # `bind` is the traversal's own copy
                bind.value, bind.required = self.values[bind.key], False

        return visitors.cloned_traverse(self.statement, {}, {"bindparam": fill})


def bound(statement: ClauseElement, /, **values: Any) -> Any:
    """Pair a prebuilt statement with its values; pass the result to `conn.fetch_one` & co."""
    return Bound(statement, values)


def plain(query: Any) -> Any:
    """What `databases` can compile: a `Bound` with its values filled in, else `query` as is."""
    return query.plain() if isinstance(query, Bound) else query
