"""Operations endpoints: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api import vitals
from api.context import get_store
from api.responses import JSONResponse
from db.redis_options import redis_options
from tasks.jobs import all_jobs

READY_TIMEOUT_SECS = 2.0
READ_REPLICA = "read_replica"  # DATABASE_READ_URL's check


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readiness(request: Request) -> dict[str, str]:
    """Each dependency's state: "ok" or "error: <exception type>" (/readyz, /metrics)."""
    checks: dict[str, str] = {}
    try:
        async with asyncio.timeout(READY_TIMEOUT_SECS):
            await get_store(request).database.fetch_val("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    redis_ping = getattr(request.app.state, "redis_ping", None)
    if redis_ping is not None:
        try:
            async with asyncio.timeout(READY_TIMEOUT_SECS):
                await redis_ping()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"error: {type(exc).__name__}"
    store = get_store(request)
    if store.replica is not None:
        try:
            async with asyncio.timeout(READY_TIMEOUT_SECS):
                checks[READ_REPLICA] = await store.probe_replica()
        except TimeoutError:
            checks[READ_REPLICA] = "error: TimeoutError"
    return checks


async def readyz(request: Request) -> Response:
    """200 only when the database and, if configured, Redis answer. The read replica is
    reported, not required: without it, reads go to the primary."""
    checks = await readiness(request)
    ready = all(value == "ok" for name, value in checks.items() if name != READ_REPLICA)
    return JSONResponse(
        {"status": "ok" if ready else "unavailable", **checks}, 200 if ready else 503
    )


# Set by `bms serve --workers N` (N > 1): every worker writes its samples to files there.
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"


async def metrics(request: Request) -> Response:
    """This process's metrics, or with several workers the sum over all of them (whichever
    worker a scrape reaches)."""
    registry = REGISTRY
    if os.environ.get(MULTIPROCESS_ENV):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    vitals.sample_process(request.app)
    settings = request.app.state.settings
    checks = await readiness(request)
    shared = [vitals.readiness_metric(checks)]
    if checks["database"] == "ok":
        shared += await vitals.database_vitals(
            get_store(request),
            jobs=all_jobs(settings.task_settings()),
            relay=bool(settings.redis_url),
            embedded_scheduler=settings.scheduler_embedded,
        )
    read_now = CollectorRegistry(auto_describe=False)
    read_now.register(vitals.Snapshot(shared))
    body = generate_latest(registry) + generate_latest(read_now)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


routes = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
]


@asynccontextmanager
async def redis_health(app: Starlette) -> AsyncIterator[None]:
    """Give /readyz a Redis client of its own (short timeouts: readiness must not hang)."""
    client = redis.asyncio.from_url(
        app.state.settings.redis_url,
        socket_timeout=READY_TIMEOUT_SECS,
        socket_connect_timeout=READY_TIMEOUT_SECS,
        **redis_options(retries=1),  # a connection gone stale in a Redis restart is not "down"
    )
    app.state.redis_ping = client.ping
    try:
        yield
    finally:
        app.state.redis_ping = None
        await client.aclose()
