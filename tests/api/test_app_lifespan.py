"""What the served app does once at startup."""

from __future__ import annotations

import gc
import multiprocessing

import pytest

from api.app import create_app
from bms.settings import Settings
from domain import offload


@pytest.mark.parametrize("served", [True, False])
async def test_startup_objects_are_frozen_only_for_served_apps(
    settings: Settings, served: bool
) -> None:
    gc.unfreeze()
    app = create_app(settings, freeze_startup_objects=served)
    try:
        async with app.router.lifespan_context(app):
            frozen = gc.get_freeze_count()
            assert (frozen > 0) is served
    finally:
        gc.unfreeze()  # the test process goes on creating and dropping apps


@pytest.mark.parametrize("served", [True, False])
async def test_served_apps_start_the_worker_process_with_them(
    settings: Settings, served: bool
) -> None:
    """Its start costs a second of CPU: at startup, not during the first recurring rule."""
    offload.shutdown_isolated()
    app = create_app(settings, start_worker_process=served)
    async with app.router.lifespan_context(app):
        assert bool(multiprocessing.active_children()) is served


async def test_the_worker_process_stops_with_the_app(settings: Settings) -> None:
    """A server that stops takes its worker process with it (left to the interpreter's
    exit, every shutdown printed a warning about leaked semaphores)."""
    offload.shutdown_isolated()
    app = create_app(settings, start_worker_process=True)
    async with app.router.lifespan_context(app):
        (worker,) = multiprocessing.active_children()
    worker.join(timeout=10)
    assert not worker.is_alive()
    assert not multiprocessing.active_children()
