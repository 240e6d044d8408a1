"""The application factory: routes, middleware, and the lifespan that owns every resource."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager

import structlog
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Mount, Router
from starlette.types import Receive, Scope, Send

from api import ops, subscriptions, web
from api.auth.credential_cache import CredentialCache
from api.auth.middleware import AuthMiddleware
from api.errors import EXCEPTION_HANDLERS
from api.hosts import AllowedHostsMiddleware
from api.middleware import BodyLimitMiddleware, MetricsMiddleware, RequestIdMiddleware
from api.outage import DatabaseUnavailableMiddleware
from api.replica import ReadYourWritesMiddleware
from api.resources.profiles import media_routes
from api.responses import error_response
from api.routes import ROUTES
from api.security_headers import SecurityHeadersMiddleware
from api.segment_router import SegmentRouter
from api.subscriptions import filter_parsers
from api.vitals import vitals_sampler
from bms.settings import Settings, load_settings
from db import migrate
from db.effects import EffectSink
from db.store import Store
from domain import offload
from realtime.endpoint import RealtimeShortcut
from realtime.service import realtime_component
from tasks.component import task_component

log = structlog.get_logger("bms.app")

CORS_REQUEST_HEADERS = ["Authorization", "Content-Type", "X-CSRFToken", "If-Match", "X-Request-ID"]

# A component starts with the app and stops with it (realtime hub, task broker, ...).
Component = Callable[[Starlette], AbstractAsyncContextManager[None]]


class NotMigrated(RuntimeError):
    """The database is not at the latest migration."""


async def _not_found(scope: Scope, receive: Receive, send: Send) -> None:
    """Unknown paths under /api/ answer in DRF's shape (known paths, wrong method: 405)."""
    await error_response("Not found.", 404)(scope, receive, send)


def api_router() -> Router:
    """Every /api/ route; each resource module exports its own `routes`."""
    return SegmentRouter(ROUTES, default=_not_found)


def default_components(settings: Settings) -> list[Component]:
    """The realtime hub and the task queue (in-process without REDIS_URL)."""
    return [
        realtime_component(settings.realtime_settings()),
        task_component(settings.task_settings()),
    ]


def wire_effects(app: Starlette, sink: EffectSink) -> None:
    """Where this process's after-commit effects go, once its components are running.

    Events and revocations: the realtime hub (its sockets, then Redis for the others).
    Tasks (email delivery): the task broker, kicked in the background.
    """
    realtime = getattr(app.state, "realtime", None)
    tasks = getattr(app.state, "tasks", None)
    sink.publish = realtime.on_commit if realtime is not None else None
    sink.revoke = realtime.revoke if realtime is not None else None
    sink.enqueue = tasks.enqueue if tasks is not None else None


def trust_cached_credentials(app: Starlette) -> None:
    """Let the credential cache serve while revocations reach this process: through Redis,
    or in-process in embedded mode (one process). PostgreSQL without Redis: never."""
    cache: CredentialCache = app.state.credential_cache
    realtime = getattr(app.state, "realtime", None)
    if realtime is None or (realtime.backend is None and not app.state.settings.embedded):
        return
    realtime.hub.revocation_listeners.append(cache.revoke)
    cache.attach(realtime.revocation_epoch)


async def ensure_migrated(settings: Settings) -> None:
    """Embedded mode migrates itself; elsewhere refuse to start on an old schema."""
    url = settings.effective_database_url
    if await migrate.is_up_to_date(url):
        return
    if settings.embedded:
        log.info("migrating embedded database", url=url)
        await migrate.upgrade_async(url)
        return
    raise NotMigrated(
        "The database schema is not up to date. Run `bms migrate` first "
        f"(database: {settings.database_url.rsplit('@', 1)[-1]})."
    )


def create_served_app() -> Starlette:
    """The app as `bms serve` runs it in each worker process (see `freeze_startup_objects`).

    A worker is a fresh process (spawned): it configures its own logging before anything logs.
    """
    from bms.errortracking import init_error_tracking
    from bms.logs import configure_from

    settings = load_settings()
    configure_from(settings, role="serve")
    init_error_tracking(settings, role="serve")
    return create_app(settings, freeze_startup_objects=True, start_worker_process=True)


def create_app(
    settings: Settings | None = None,
    *,
    components: list[Component] | None = None,
    freeze_startup_objects: bool = False,
    start_worker_process: bool = False,
) -> Starlette:
    """Build the ASGI app; nothing connects until the lifespan starts.

    `freeze_startup_objects`: once started, move everything built so far (modules, schemas,
    routes, compiled statements) out of the garbage collector's reach with `gc.freeze()`.
    They live as long as the process, yet each full collection walked all of them: 70-90 ms
    pauses under load, the REST benchmark's p99. After freezing, a full collection takes about
    1 ms. Only for a process that runs one app for its lifetime, hence off by default.

    `start_worker_process`: start the pure-Python worker process (`domain.offload`) with the
    app, not at the first recurrence rule: its start costs about a second of CPU, which then
    competed with requests (#10: delivery p99 60 ms instead of 33 ms during an RRULE burst).
    """
    settings = settings or load_settings()
    sink = EffectSink()  # plugged by `wire_effects` once the components run
    store = Store(
        settings.effective_database_url,
        pool_max=settings.database_pool_max,
        sink=sink,
        fast_paths=settings.fast_paths,
        read_url=settings.database_read_url or None,
    )
    secret_key = settings.resolved_secret_key()
    credential_cache = CredentialCache(max_age_secs=settings.auth_cache_secs)
    chosen = default_components(settings) if components is None else components
    if settings.redis_url:
        chosen = [ops.redis_health, *chosen]
    chosen = [*chosen, vitals_sampler]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await ensure_migrated(settings)
        await store.connect()
        try:
            async with AsyncExitStack() as stack:
                stack.enter_context(sink.plugged())  # unplugged after every component stopped
                for component in chosen:
                    await stack.enter_async_context(component(app))
                wire_effects(app, sink)
                trust_cached_credentials(app)
                stack.callback(credential_cache.detach)  # before the components stop
                if start_worker_process:
                    offload.start_isolated("domain.recurrence", "domain.series")
                    # Stopped with the app, off the loop: left to the interpreter's exit, its
                    # queues' semaphores were reported leaked on every shutdown.
                    stack.push_async_callback(asyncio.to_thread, offload.shutdown_isolated)
                if freeze_startup_objects:
                    gc.collect()  # garbage is collected, not frozen
                    gc.freeze()
                yield
        finally:
            await store.disconnect()

    app = Starlette(
        routes=[
            # First: most requests are /api/ ones, and each route below is anchored outside
            # /api/, so trying this one first changes no answer and spares every API request
            # nine regex misses (tests/api/test_segment_router.py checks both).
            Mount("/api", app=api_router()),
            *ops.routes,
            *web.routes,
            *media_routes,
            *subscriptions.routes,
        ],
        middleware=[
            # Outermost: every answer carries them, the Host check's 400 included.
            Middleware(SecurityHeadersMiddleware, hsts=settings.cookie_secure),
            *(
                [Middleware(AllowedHostsMiddleware, allowed_hosts=settings.allowed_hosts)]
                if settings.allowed_hosts
                else []
            ),
            Middleware(RealtimeShortcut),  # /ws/ skips the HTTP-only middleware below
            Middleware(RequestIdMiddleware),
            Middleware(MetricsMiddleware),
            Middleware(BodyLimitMiddleware),
            Middleware(
                CORSMiddleware,
                allow_origins=settings.allowed_origins,
                allow_credentials=True,
                allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
                allow_headers=CORS_REQUEST_HEADERS,
                expose_headers=["ETag", "X-Request-ID"],
                max_age=600,
            ),
            Middleware(DatabaseUnavailableMiddleware),
            *(
                [
                    Middleware(
                        ReadYourWritesMiddleware,
                        store=store,
                        secret_key=secret_key,
                        window_secs=settings.database_read_after_write_secs,
                        secure=settings.cookie_secure,
                    )
                ]
                if store.replica is not None
                else []
            ),
            Middleware(AuthMiddleware),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.store = store
    app.state.secret_key = secret_key
    app.state.credential_cache = credential_cache
    app.state.realtime_filters = filter_parsers(ROUTES)  # /ws/ filters follow the REST rules
    return app
