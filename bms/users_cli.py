"""`bms user list|set-password|unlock|deactivate`: account care without the API.

Changes go through the same domain rules as the API (password policy, last active admin,
credentials ended on a new password or deactivation), made by the command as an admin.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from bms.settings import Settings
from db.effects import EffectSink
from db.store import Store
from db.tables import login_failures, users
from domain.actors import Actor, Role
from domain.errors import DomainError, ValidationFailed, constraints_as_domain_errors
from domain.profiles import update_profile
from domain.throttle import clear_user_failures
from domain.users import get_profile_by_user, get_user_row
from realtime.service import revocation_publisher

# The command acts as an admin; its history entries carry no user (actor_id None).
CLI_ADMIN = Actor(id=0, username="bms-cli", role=Role.ADMIN, via="system")


class UserCommandFailed(Exception):
    """A user-facing reason the command did nothing."""


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "never"


async def list_users(store: Store, *, since: datetime) -> list[str]:
    """One line per user: name, role, active, last login, recent failed logins."""
    failures = (
        sa.select(login_failures.c.username, sa.func.count().label("failures"))
        .where(login_failures.c.at > since)
        .group_by(login_failures.c.username)
        .subquery()
    )
    query = (
        sa.select(users.c.username, users.c.role, users.c.is_active, users.c.last_login,
                  sa.func.coalesce(failures.c.failures, 0).label("failures"))
        .select_from(users.outerjoin(failures, failures.c.username == users.c.username))
        .order_by(users.c.username)
    )  # fmt: skip
    async with store.connection() as conn:
        rows = await conn.fetch_all(query)
    lines = [f"{'USERNAME':<30} {'ROLE':<9} {'ACTIVE':<7} {'LAST LOGIN':<21} FAILED LOGINS"]
    for row in rows:
        active = "yes" if row["is_active"] else "no"
        lines.append(
            f"{row['username']:<30} {row['role']:<9} {active:<7} "
            f"{_when(row['last_login']):<21} {row['failures']}"
        )
    return lines


async def _profile_id(store: Store, username: str) -> int:
    async with store.connection() as conn:
        row = await get_user_row(conn, username=username)
        profile = await get_profile_by_user(conn, user_id=row["id"]) if row else None
    if profile is None:
        raise UserCommandFailed(f"no user named {username!r} (see `bms user list`)")
    return int(profile["id"])


async def change_user(store: Store, username: str, data: dict[str, Any]) -> None:
    """Apply `data` to a user's profile as an admin would through the API."""
    profile_id = await _profile_id(store, username)
    with constraints_as_domain_errors():
        async with store.unit_of_work(actor_id=None) as uow:
            await update_profile(uow, CLI_ADMIN, profile_id, data, partial=True)


async def unlock_user(store: Store, username: str) -> int:
    await _profile_id(store, username)  # an unknown name is a mistake, not "0 cleared"
    async with store.unit_of_work(actor_id=None) as uow:
        return await clear_user_failures(uow, username=username)


def read_new_password() -> str:
    """The new password: the first line of stdin when piped, else typed twice without echo."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("New password: ")
    if first != getpass.getpass("New password (again): "):
        raise UserCommandFailed("passwords do not match")
    return first


def _report(exc: DomainError) -> None:
    if isinstance(exc, ValidationFailed):
        for field, messages in exc.errors.items():
            print(f"bms: {field}: {' '.join(messages)}", file=sys.stderr)
    else:
        print(f"bms: {exc.detail}", file=sys.stderr)


async def run_action(settings: Settings, action: Callable[[Store], Awaitable[str | None]]) -> int:
    """Run one command's action on its own store; print what it says; the exit status."""
    async with revocation_publisher(settings.realtime_settings()) as revoke:
        # Ended credentials stop working on every running server at once (through Redis).
        store = Store(
            settings.effective_database_url,
            fast_paths=settings.fast_paths,
            sink=EffectSink(revoke=revoke),
        )
        await store.connect()
        try:
            said = await action(store)
        except UserCommandFailed as exc:
            print(f"bms: {exc}", file=sys.stderr)
            return 1
        except DomainError as exc:
            _report(exc)
            return 1
        finally:
            await store.disconnect()
    if said:
        print(said)
    return 0


def run_user_command(settings: Settings, args: argparse.Namespace) -> int:
    """Entry point of `bms user ...` (wired in bms/cli.py); returns the exit status."""
    action: Callable[[Store], Awaitable[str | None]]
    if args.user_command == "list":

        async def action(store: Store) -> str | None:
            since = store.clock() - timedelta(seconds=settings.login_window_secs)
            return "\n".join(await list_users(store, since=since))

    elif args.user_command == "set-password":
        try:
            password = read_new_password()
        except UserCommandFailed as exc:
            print(f"bms: {exc}", file=sys.stderr)
            return 1

        async def action(store: Store) -> str | None:
            await change_user(store, args.username, {"password": password})
            return f"bms: new password set for {args.username!r}; their sessions and tokens ended"

    elif args.user_command == "unlock":

        async def action(store: Store) -> str | None:
            cleared = await unlock_user(store, args.username)
            return f"bms: {args.username!r} may log in again ({cleared} failed attempts forgotten)"

    else:

        async def action(store: Store) -> str | None:
            await change_user(store, args.username, {"is_active": False})
            return f"bms: deactivated {args.username!r}; their sessions, tokens and keys ended"

    return asyncio.run(run_action(settings, action))


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """`bms user ...` and its four commands."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "user", help="list users, set a password, lift a lockout, deactivate"
    )
    commands = parser.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    commands.add_parser("list", help="every user: role, active, last login, failed logins")
    for name, text in [
        ("set-password", "set a new password (stdin when piped, else a prompt without echo)"),
        ("unlock", "lift a lockout after too many failed logins"),
        ("deactivate", "deactivate a user and end their sessions, tokens and API keys"),
    ]:
        command = commands.add_parser(name, help=text)
        command.add_argument("username")
    return parser
