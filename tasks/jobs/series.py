"""Job: keep every recurring series materialized up to the rolling horizon."""

from __future__ import annotations

from typing import Any

from db.store import Store
from domain.series import materialize_all
from tasks.config import TaskSettings


async def run(store: Store, settings: TaskSettings) -> dict[str, Any]:
    reports = await materialize_all(store, horizon_days=settings.series_horizon_days)
    return {
        "series": len(reports),
        "created": sum(len(r.created) for r in reports),
        "skipped": sum(len(r.skipped) for r in reports),
    }
