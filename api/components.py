"""Long-lived parts started by the app's lifespan, chosen from the settings."""

from __future__ import annotations

from bms.settings import Settings


def components_for(settings: Settings) -> list:
    """Realtime hub and task queue (added by their packages)."""
    from realtime.service import realtime_component
    from tasks.component import task_component

    return [realtime_component, task_component(settings)]
