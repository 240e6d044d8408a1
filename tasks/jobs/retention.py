"""Job: delete old events, expired sessions and tokens, and stale login failures."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bms.settings import Settings
from db.store import Store
from db.tables import auth_tokens, login_failures, sessions
from realtime.retention import delete_old_events


async def run(store: Store, settings: Settings) -> dict[str, Any]:
    now = store.clock()
    counts: dict[str, Any] = {}
    counts["events"] = await delete_old_events(
        store, now=now, retention_days=settings.event_retention_days
    )
    async with store.connection() as conn:
        session_cutoff = now - timedelta(days=settings.session_retention_days)
        gone = await conn.fetch_all(
            sessions.delete().where(sessions.c.expires_at < session_cutoff).returning(sessions.c.id)
        )
        counts["sessions"] = len(gone)
        # A revoked token must stay recorded until it expires, or it would validate again.
        gone = await conn.fetch_all(
            auth_tokens.delete().where(auth_tokens.c.expires_at < now).returning(auth_tokens.c.jti)
        )
        counts["auth_tokens"] = len(gone)
        failures_cutoff = now - timedelta(seconds=settings.login_window_secs * 2)
        gone = await conn.fetch_all(
            login_failures.delete()
            .where(login_failures.c.at < failures_cutoff)
            .returning(login_failures.c.id)
        )
        counts["login_failures"] = len(gone)
    return counts
