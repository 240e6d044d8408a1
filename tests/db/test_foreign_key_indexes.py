"""Every foreign key leads an index, as Django gives every ForeignKey one.

Without it, deleting (or re-keying) a referenced row makes the database scan the whole
referencing table for each row deleted: a ticket's DELETE read every time entry (the
entries' `ON DELETE SET NULL` check), a profile's every history entry ever written.
"""

from __future__ import annotations

import sqlalchemy as sa

from db.tables import metadata


def _unindexed_foreign_keys() -> list[str]:
    missing = []
    for table in metadata.sorted_tables:
        leading = {index.expressions[0] for index in table.indexes}
        leading |= {
            c.columns[0]
            for c in table.constraints
            if isinstance(c, sa.PrimaryKeyConstraint | sa.UniqueConstraint) and c.columns
        }
        for key in table.foreign_keys:
            if key.parent not in leading:
                missing.append(f"{table.name}.{key.parent.name} -> {key.target_fullname}")
    return missing


def test_every_foreign_key_column_leads_an_index() -> None:
    assert _unindexed_foreign_keys() == []
