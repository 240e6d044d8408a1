"""Job: delete old events, expired sessions and tokens, and stale login failures.

Each rule and its cut-off lives beside its domain; the job only runs them.
"""

from __future__ import annotations

from typing import Any

from db.store import Store
from domain.event_retention import delete_old_events
from domain.sessions import delete_expired_sessions
from domain.throttle import delete_old_failures
from domain.tokens import delete_expired_tokens
from tasks.config import TaskSettings


async def run(store: Store, settings: TaskSettings) -> dict[str, Any]:
    counts: dict[str, Any] = {
        "events": await delete_old_events(
            store, now=store.clock(), retention_days=settings.event_retention_days
        )
    }
    async with store.unit_of_work(actor_id=None) as uow:
        counts["sessions"] = await delete_expired_sessions(
            uow, kept_days=settings.session_retention_days
        )
        counts["auth_tokens"] = await delete_expired_tokens(uow)
        counts["login_failures"] = await delete_old_failures(
            uow, window_secs=settings.login_window_secs
        )
    return counts
