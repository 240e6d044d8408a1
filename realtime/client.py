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

CLOSE_UNAUTHORIZED = 4401
MAX_BACKOFF_SECS = 10.0
SUMMARY_KEYS = ("number", "title", "name", "status", "username")


class AuthFailed(Exception):
    """Credentials were refused and could not be renewed."""


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


class Credentials:
    """An access token, renewed with the refresh token (if we logged in) when refused."""

    def __init__(self, base: str, token: str | None, username: str | None) -> None:
        self.base = http_base(base)
        self.access = token
        self.refresh: str | None = None
        self.username = username

    def login(self) -> None:
        username = self.username or input("Username: ")
        password = getpass.getpass("Password: ")
        pair = _post_json(
            self.base + "/api/auth/token/", {"username": username, "password": password}
        )
        self.access, self.refresh = pair["access"], pair["refresh"]

    def renew(self) -> None:
        """After a refusal: refresh if we can, else give up."""
        if self.refresh is None:
            raise AuthFailed("the server refused the token")
        pair = _post_json(self.base + "/api/auth/token/refresh/", {"refresh": self.refresh})
        # Refresh tokens rotate: the one just used is retired, and using it again would
        # revoke this login's every token.
        self.access, self.refresh = pair["access"], pair["refresh"]


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
                elif kind == "resync_required":
                    self.note(f"history too old: refetch {', '.join(frame['topics'])} over REST")
                elif kind == "error":
                    self.note(f"server error: {frame.get('code')}: {frame.get('detail')}")

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


def run_subscribe(args: argparse.Namespace) -> int:
    """Entry point for `bms subscribe` (wired in bms/cli.py); returns the exit status."""
    try:
        event_filter = parse_filters(args.filter or [])
    except ValueError as exc:
        print(f"bms subscribe: {exc}", file=sys.stderr)
        return 2
    bearer = (
        args.token
        or getattr(args, "api_key", None)
        or os.environ.get("BMS_TOKEN")
        or os.environ.get("BMS_API_KEY")
    )
    credentials = Credentials(args.url, bearer, getattr(args, "username", None))

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
    except BrokenPipeError:  # `| head` closed the pipe
        return 0
    return 0
