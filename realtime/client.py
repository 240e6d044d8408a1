"""`bms subscribe`: print live events from /ws/, reconnecting and resuming from the last id."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, TextIO
from urllib.parse import urlsplit, urlunsplit

import websockets
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from domain.limits import EVENT_ID_MAX, parse_int

CLOSE_UNAUTHORIZED = 4401
TOKEN_ENV = "BMS_TOKEN"  # noqa: S105 - the name of a variable, not a secret
API_KEY_ENV = "BMS_API_KEY"
MAX_BACKOFF_SECS = 10.0
SUMMARY_KEYS = ("number", "title", "name", "status", "username")


class AuthFailed(Exception):
    """Credentials were refused and could not be renewed."""


class SubscriptionRefused(Exception):
    """The server answered our subscribe with an error frame: nothing is subscribed."""


def ws_url(base: str) -> str:
    """http(s)://host[:port] (or a ws URL) → ws(s)://host[:port]/ws/."""
    parts = urlsplit(base if "://" in base else "http://" + base)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    path = parts.path if parts.path.rstrip("/").endswith("/ws") else "/ws/"
    return urlunsplit((scheme, parts.netloc, path.rstrip("/") + "/", "", ""))


def http_base(base: str) -> str:
    parts = urlsplit(base if "://" in base else "http://" + base)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, "", "", ""))


def parse_filters(items: list[str]) -> dict[str, list[str]]:
    """["facility=3", "facility=4", "status=open,acknowledged"] → {"facility": ["3", "4"], ...}."""
    result: dict[str, list[str]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--filter {item!r}: expected FIELD=VALUE")
        result.setdefault(key.strip(), []).extend(v.strip() for v in values.split(","))
    return result


def _post_json(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(  # noqa: S310 - the user chose the URL
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise AuthFailed(f"{url}: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise AuthFailed(f"cannot reach {url} ({reason})") from None


class Credentials:
    """What `bms subscribe` presents, and how it renews it when the server refuses it.

    Logged in at the prompt: the refresh token renews the access token (each refresh rotates
    the refresh token too), so a tail runs for days. An API key does not expire. A bare
    `--token` cannot be renewed: when it is refused the command says how to run it instead.
    """

    def __init__(
        self, base: str, token: str | None, username: str | None, *, api_key: str | None = None
    ) -> None:
        self.base = http_base(base)
        self.access = api_key or token
        self.refresh: str | None = None
        self.username = username
        self.is_api_key = api_key is not None

    def login(self) -> None:
        username = self.username or input("Username: ")
        password = getpass.getpass("Password: ")
        pair = _post_json(
            self.base + "/api/auth/token/", {"username": username, "password": password}
        )
        self.access, self.refresh = pair["access"], pair["refresh"]

    def renew(self) -> None:
        """After a refusal: refresh if we can, else give up saying how to run for longer."""
        if self.is_api_key:
            raise AuthFailed("the server refused the API key (revoked or expired?)")
        if self.refresh is None:
            raise AuthFailed(
                "the server refused the token (access tokens live 15 minutes); to run for "
                "days use --api-key (or BMS_API_KEY), or leave out --token to log in at the "
                "prompt so the command renews its token itself"
            )
        pair = _post_json(self.base + "/api/auth/token/refresh/", {"refresh": self.refresh})
        self.access = pair["access"]
        self.refresh = pair.get("refresh", self.refresh)  # rotated (CONTRACT §5)


def format_event(event: dict[str, Any]) -> str:
    """One human-readable line: time, id, topic, action, object and a short summary."""
    data = event.get("data") or {}
    summary = " ".join(
        f"{key}={data[key]!s}" for key in SUMMARY_KEYS if isinstance(data, dict) and key in data
    )
    at = str(event.get("at", ""))[11:19]
    line = f"{at} #{event['id']} {event['topic']} {event['action']} id={data.get('id')}"
    return f"{line} {summary}".rstrip()


class Subscriber:
    """Keeps one subscription alive; `last_id` is the last event printed (resume point)."""

    def __init__(
        self,
        url: str,
        credentials: Credentials,
        topics: list[str],
        *,
        since: int | None,
        event_filter: dict[str, list[str]],
        emit: Callable[[dict[str, Any], str], None],
        note: Callable[[str], None],
    ) -> None:
        self.url = url
        self.credentials = credentials
        self.topics = topics
        self.last_id = since
        self.event_filter = event_filter
        self.emit = emit
        self.note = note

    async def run_once(self) -> None:
        """One connection: subscribe (resuming from last_id) and print until it closes."""
        headers = {"Authorization": f"Bearer {self.credentials.access}"}
        async with connect(
            self.url, additional_headers=headers, compression=None, max_size=2**24
        ) as ws:
            message: dict[str, Any] = {"type": "subscribe", "topics": self.topics}
            if self.event_filter:
                message["filter"] = self.event_filter
            welcome = json.loads(await ws.recv())
            if self.last_id is None:
                self.last_id = int(welcome.get("last_event_id") or 0)
            message["since"] = self.last_id
            await ws.send(json.dumps(message))
            async for raw in ws:
                frame = json.loads(raw)
                kind = frame.get("type")
                if kind == "event":
                    if frame["id"] > (self.last_id or 0):
                        self.emit(frame, raw if isinstance(raw, str) else raw.decode())
                        self.last_id = frame["id"]
                elif kind == "subscribed":
                    topics = ", ".join(frame.get("topics") or self.topics)
                    self.note(f"subscribed to {topics}, from event id {self.last_id}")
                elif kind == "resync_required":
                    self.note(f"history too old: refetch {', '.join(frame['topics'])} over REST")
                elif kind == "error":  # we only send `subscribe`: it was refused
                    raise SubscriptionRefused(f"{frame.get('code')}: {frame.get('detail')}")

    async def run_forever(self) -> None:
        """Reconnect with backoff; renew credentials when refused; stop only on auth failure."""
        delay = 0.5
        while True:
            try:
                await self.run_once()
                delay = 0.5
            except InvalidStatus as exc:
                if exc.response.status_code in (401, 403):
                    self.credentials.renew()
                    continue
                self.note(f"handshake failed: HTTP {exc.response.status_code}")
            except ConnectionClosed as exc:
                if exc.rcvd is not None and exc.rcvd.code == CLOSE_UNAUTHORIZED:
                    self.credentials.renew()
                    continue
                code = exc.rcvd.code if exc.rcvd is not None else "none"
                self.note(f"connection closed (code {code}); reconnecting")
                delay = 0.5
            except (OSError, TimeoutError, websockets.exceptions.InvalidHandshake) as exc:
                self.note(f"cannot connect ({exc}); retry in {delay:.1f}s")
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF_SECS)


def _printer(as_json: bool, out: TextIO) -> Callable[[dict[str, Any], str], None]:
    def emit(frame: dict[str, Any], raw: str) -> None:
        out.write((raw if as_json else format_event(frame)) + "\n")
        out.flush()

    return emit


def since_id(raw: str) -> int:
    """argparse type of --since: an event id the server can hold."""
    try:
        return parse_int(raw, low=0, high=EVENT_ID_MAX)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{raw!r} is not an event id (a whole number from 0 to {EVENT_ID_MAX})"
        ) from None


def run_subscribe(args: argparse.Namespace) -> int:
    """Entry point for `bms subscribe` (wired in bms/cli.py); returns the exit status."""
    try:
        event_filter = parse_filters(args.filter or [])
    except ValueError as exc:
        print(f"bms subscribe: {exc}", file=sys.stderr)
        return 2
    # An option beats the environment; of the two variables, the token is tried first.
    token = args.token or (None if getattr(args, "api_key", None) else os.environ.get(TOKEN_ENV))
    api_key = getattr(args, "api_key", None) or (None if token else os.environ.get(API_KEY_ENV))
    credentials = Credentials(
        args.url, token, getattr(args, "username", None), api_key=api_key or None
    )

    def note(text: str) -> None:
        print(f"bms subscribe: {text}", file=sys.stderr, flush=True)

    subscriber = Subscriber(
        ws_url(args.url),
        credentials,
        list(args.topics),
        since=args.since,
        event_filter=event_filter,
        emit=_printer(args.json, sys.stdout),
        note=note,
    )
    try:
        if credentials.access is None:
            credentials.login()
        asyncio.run(subscriber.run_forever())
    except AuthFailed as exc:
        note(f"authentication failed: {exc}")
        return 1
    except SubscriptionRefused as exc:
        note(f"subscription refused: {exc}")
        return 2
    except BrokenPipeError:  # `| head` closed the pipe
        return 0
    return 0
