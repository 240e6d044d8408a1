"""The `bms` command: serve, migrate, createuser, seed-demo, worker, scheduler, subscribe."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import importlib.metadata
import os
import secrets
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from bms.settings import Settings, SettingsError, load_settings

ROLES = ("admin", "manager", "operator", "viewer")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show each option's default, except the empty ones (None, False, [])."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False, []):
            return action.help
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """Every `--help` shows each option's default."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)


WORKER_HEALTHCHECK_TIMEOUT_SECS = 60
# ALLOWED_HOSTS when development sets none (#10).
LOCAL_HOST_NAMES = ("localhost", "127.0.0.1", "::1")
WILDCARD_BIND_HOSTS = frozenset({"0.0.0.0", "::", ""})  # noqa: S104


def _version() -> str:
    try:
        return importlib.metadata.version("bms")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree, not installed
        return "unknown"


def _settings_or_exit() -> Settings:
    from bms.environments import check_environment

    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"bms: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    errors, warnings = check_environment(settings)
    for warning in warnings:
        print(f"bms: warning ({settings.bms_env}): {warning}", file=sys.stderr)
    if errors:
        print("bms: refusing to start with an unsafe production configuration:", file=sys.stderr)
        for error in errors:
            print(f"  {error}", file=sys.stderr)
        raise SystemExit(2)
    return settings


def cmd_migrate(args: argparse.Namespace) -> int:
    from db import migrate

    settings = _settings_or_exit()
    if args.check:  # deploy scripts: refuse to start new code on an old schema
        current = asyncio.run(migrate.current_revision(settings.effective_database_url))
        pending = migrate.pending_revisions(current)
        if pending:
            print(f"bms: {len(pending)} migrations pending: {', '.join(pending)}", file=sys.stderr)
            return 1
        print(f"bms: database is at revision {current}; no migrations pending")
        return 0
    migrate.upgrade(settings.effective_database_url)
    print(f"bms: database is at revision {migrate.head_revision()}")
    return 0


def _ensure_schema(settings: Settings) -> bool:
    from db import migrate

    if asyncio.run(migrate.is_up_to_date(settings.effective_database_url)):
        return True
    if settings.embedded:
        migrate.upgrade(settings.effective_database_url)
        return True
    print(
        "bms: the database schema is not up to date; run `bms migrate` first.",
        file=sys.stderr,
    )
    return False


@contextmanager
def _worker_metrics_dir(workers: int) -> Iterator[None]:
    """Several workers: Prometheus multiprocess mode, so /metrics sums every worker's samples.

    A fresh directory per run (removed after), unless PROMETHEUS_MULTIPROC_DIR names one.
    """
    if workers < 2 or os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        yield
        return
    path = tempfile.mkdtemp(prefix="bms-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path  # inherited by the worker processes
    try:
        yield
    finally:
        del os.environ["PROMETHEUS_MULTIPROC_DIR"]
        shutil.rmtree(path, ignore_errors=True)


# uvicorn's own implementation of what realtime/uvproto.py slims down (FAST_PATHS=0).
WS_PLAIN = "websockets-sansio"


def _default_allowed_hosts(settings: Settings, bind_host: str) -> None:
    """Development without ALLOWED_HOSTS serves the local names and the bind address only.

    Set in the environment, so every worker process (which reads its own settings) sees it.
    A wildcard bind (0.0.0.0, ::) cannot name its hosts: any host is served then.
    """
    if settings.allowed_hosts or settings.bms_env != "development":
        return
    if bind_host in WILDCARD_BIND_HOSTS:
        return
    hosts = dict.fromkeys([*LOCAL_HOST_NAMES, bind_host])
    os.environ["ALLOWED_HOSTS"] = ",".join(hosts)


def cmd_serve(args: argparse.Namespace) -> int:
    import structlog
    import uvicorn

    from bms.errors import check_port_free
    from bms.logs import configure_from

    settings = _settings_or_exit()
    check_port_free(args.host, args.port)  # before migrating, seeding or "serving on"
    configure_from(settings, role="serve")
    log = structlog.get_logger("bms.serve")
    if not _ensure_schema(settings):
        return 1
    if args.demo:
        from bms.demo import seed_demo

        asyncio.run(seed_demo(settings, announce=print))
    workers = args.workers
    if settings.embedded and workers > 1:
        log.warning("embedded mode (SQLite, in-process pub/sub) runs one worker process")
        workers = 1
    _default_allowed_hosts(settings, args.host)
    mode = "embedded SQLite" if settings.embedded else "PostgreSQL"
    log.info(f"serving on http://{args.host}:{args.port}/", mode=mode, workers=workers)
    with _worker_metrics_dir(workers):
        uvicorn.run(
            "api.app:create_served_app",
            factory=True,
            host=args.host,
            port=args.port,
            workers=workers,
            log_level=settings.log_level.lower(),
            log_config=None,  # bms.logs configured the one stream (each worker: the app factory)
            access_log=False,  # api.middleware logs access lines, with request and user ids
            # FAST_PATHS: websockets-sansio with less per socket (realtime/uvproto.py).
            ws="realtime.uvproto:LeanWebSocketsProtocol" if settings.fast_paths else WS_PLAIN,
            ws_per_message_deflate=False,
            ws_ping_interval=20.0,
            ws_ping_timeout=20.0,
            timeout_graceful_shutdown=10,
            # The supervisor pings each worker; a worker busy under load answers late, and the
            # default 5 s had it killed and respawned mid-traffic (sockets and all).
            timeout_worker_healthcheck=WORKER_HEALTHCHECK_TIMEOUT_SECS,
            # The one place the client address is trusted from (TRUSTED_PROXIES: the proxy);
            # with none listed, uvicorn's own default (trust 127.0.0.1) must not apply either.
            proxy_headers=bool(settings.trusted_proxies),
            forwarded_allow_ips=settings.trusted_proxies or None,
            server_header=False,
        )
    return 0


def _read_password(args: argparse.Namespace) -> tuple[str, bool]:
    """Return (password, generated?) from stdin, a prompt, or a fresh random one."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n"), False
    if args.generate_password or not sys.stdin.isatty():
        return secrets.token_urlsafe(15), True
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Password (again): "):
        raise SystemExit("bms: passwords do not match")
    return first, False


def cmd_createuser(args: argparse.Namespace) -> int:
    from bms.admin import create_user_command

    settings = _settings_or_exit()
    if not _ensure_schema(settings):
        return 1
    password, generated = _read_password(args)
    return asyncio.run(
        create_user_command(
            settings,
            username=args.username,
            role=args.role,
            email=args.email,
            password=password,
            generated=generated,
        )
    )


def cmd_user(args: argparse.Namespace) -> int:
    from bms.users_cli import run_user_command

    settings = _settings_or_exit()
    if not _ensure_schema(settings):
        return 1
    return run_user_command(settings, args)


def cmd_seed_demo(args: argparse.Namespace) -> int:
    from bms.demo import seed_demo

    settings = _settings_or_exit()
    if not _ensure_schema(settings):
        return 1
    asyncio.run(seed_demo(settings, announce=print))
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from bms.errortracking import init_error_tracking
    from bms.logs import configure_from
    from tasks.cli import run_worker

    settings = _settings_or_exit()
    configure_from(settings, role="worker")
    init_error_tracking(settings, role="worker")
    concurrency = getattr(args, "concurrency", None)
    return run_worker(settings.task_settings(), concurrency=concurrency)


def cmd_scheduler(args: argparse.Namespace) -> int:
    from bms.errortracking import init_error_tracking
    from bms.logs import configure_from
    from tasks.cli import run_scheduler

    settings = _settings_or_exit()
    configure_from(settings, role="scheduler")
    init_error_tracking(settings, role="scheduler")
    return run_scheduler(settings.task_settings())


def cmd_subscribe(args: argparse.Namespace) -> int:
    from realtime.client import run_subscribe

    return run_subscribe(args)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="bms", description="Broadcast Management System")
    parser.add_argument("--version", action="version", version=f"bms {_version()}")
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback behind a one-line error"
    )
    sub: Any = parser.add_subparsers(  # Any: other modules add theirs (bms.backup_cli)
        dest="command",
        required=True,
        metavar="COMMAND",
        parser_class=_Parser,
    )

    serve = sub.add_parser("serve", help="run the API and WebSocket server (uvicorn)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8000, help="TCP port to listen on")
    serve.add_argument(
        "--workers", type=int, default=1, help="server processes (embedded mode: always 1)"
    )
    serve.add_argument("--demo", action="store_true", help="load the demo data set first")
    serve.set_defaults(handler=cmd_serve)

    migrate = sub.add_parser("migrate", help="apply database migrations")
    migrate.add_argument(
        "--check", action="store_true", help="apply nothing; exit 1 when migrations are pending"
    )
    migrate.set_defaults(handler=cmd_migrate)

    createuser = sub.add_parser("createuser", help="create a user")
    createuser.add_argument("--username", required=True)
    createuser.add_argument("--role", choices=ROLES, default="operator")
    createuser.add_argument("--email", default="")
    group = createuser.add_mutually_exclusive_group()
    group.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    group.add_argument("--generate-password", action="store_true", help="generate and print one")
    createuser.set_defaults(handler=cmd_createuser)

    from bms.users_cli import add_parser as add_user_parser

    add_user_parser(sub).set_defaults(handler=cmd_user)

    seed = sub.add_parser("seed-demo", help="load the demo data set (3 sites, 30 people)")
    seed.set_defaults(handler=cmd_seed_demo)

    worker = sub.add_parser("worker", help="run a Taskiq worker (email, notifications, jobs)")
    worker.add_argument(
        "--concurrency", type=int, default=None, help="tasks at once (default: WORKER_CONCURRENCY)"
    )
    worker.set_defaults(handler=cmd_worker)

    scheduler = sub.add_parser("scheduler", help="run the recurring-job scheduler")
    scheduler.set_defaults(handler=cmd_scheduler)

    from bms.backup_cli import add_parsers as add_backup_parsers

    add_backup_parsers(sub)

    from bms.transfer_cli import add_parsers as add_transfer_parsers

    add_transfer_parsers(sub)

    subscribe = sub.add_parser("subscribe", help="print live events from /ws/")
    _add_subscribe_arguments(subscribe)
    subscribe.set_defaults(handler=cmd_subscribe)
    return parser


def _add_subscribe_arguments(parser: argparse.ArgumentParser) -> None:
    from domain.topics import TOPICS
    from realtime.client import API_KEY_ENV, TOKEN_ENV, since_id

    parser.epilog = (
        f"topics: {', '.join(sorted(TOPICS))}. "
        f"Credentials: --api-key or ${API_KEY_ENV} (never expires: best for a tail that runs "
        f"for days), --token or ${TOKEN_ENV} (an access token: 15 minutes, not renewable), "
        "else a username/password prompt (renews itself with the refresh token). "
        "Status: 1 authentication failed, 2 the subscription was refused (unknown topic, bad "
        "--since or --filter)."
    )
    parser.add_argument("topics", nargs="+", help="topics, e.g. incident-tickets shifts")
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="server base URL")
    parser.add_argument(
        "--token", help=f"bearer access token (default: ${TOKEN_ENV}; else a login prompt)"
    )
    parser.add_argument(
        "--api-key",
        help=f"API key (bms_…; default: ${API_KEY_ENV}): runs for days, no token to renew",
    )
    parser.add_argument("--username", help="for the login prompt")
    parser.add_argument("--json", action="store_true", help="one JSON event per line")
    parser.add_argument("--since", type=since_id, default=None, help="resume after this event id")
    parser.add_argument(
        "--filter", action="append", default=[], metavar="FIELD=VALUE", help="e.g. facility=3"
    )


def _debugging(args: argparse.Namespace) -> bool:
    """--debug, or LOG_LEVEL=debug: show tracebacks behind the one-line errors."""
    return bool(args.debug) or os.environ.get("LOG_LEVEL", "").strip().lower() == "debug"


def _one_line(exc: Exception) -> str | None:
    """A known operational failure in one line (bms.errors), with the addresses configured."""
    from bms.errors import describe

    try:
        settings = load_settings()
    except SettingsError:
        return describe(exc)
    return describe(exc, database_url=settings.database_url, redis_url=settings.redis_url)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        line = _one_line(exc)
        if line is None or _debugging(args):
            raise
        print(f"bms: {line}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
