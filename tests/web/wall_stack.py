"""A real stack for browser tests: PostgreSQL, a private redis-server, one `bms serve`,
Debian's Chromium driven by Playwright, and a REST client that seeds a believable site."""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Browser, ConsoleMessage, Page, WebSocket, async_playwright

from bms.settings import Settings
from db import migrate
from domain.tokens import issue_token_pair
from domain.users import create_user
from realtime.service import Realtime
from tests.conftest import (
    TEST_PASSWORD,
    create_postgres_database,
    drop_postgres_database,
    make_settings,
)
from tests.realtime.helpers import started
from tests.realtime.servers import Redis, Server

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("BMS_TEST_ARTIFACTS", "/tmp/bms-test-artifacts"))
# What a browser logs on its own while the server or its credentials are gone on purpose.
NETWORK_NOISE = re.compile(
    r"WebSocket connection to .* failed|Failed to load resource|net::ERR_CONNECTION_REFUSED"
)


@dataclass
class Stack:
    server: Server
    redis: Redis
    settings: Settings
    local: Realtime  # writes from "another process" (the test), published like a server's
    browser: Browser
    http: httpx.AsyncClient
    ids: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return self.server.base

    async def call(self, method: str, path: str, who: str = "boss", **kwargs: Any) -> Any:
        """A REST call as one of the seeded people; asserts success, returns the JSON."""
        response = await self.http.request(
            method,
            self.base + path,
            headers={"Authorization": f"Bearer {self.tokens[who]}"},
            **kwargs,
        )
        assert response.status_code < 300, (method, path, response.status_code, response.text)
        return response.json() if response.content else None

    async def api_key(self, who: str = "wall", **body: Any) -> dict[str, Any]:
        return dict(await self.call("POST", "/api/api-keys/", who, json={"name": "wall", **body}))

    async def incident(self, title: str, **fields: Any) -> dict[str, Any]:
        body = {"title": title, "incident_type": self.ids["type"], "facility": self.ids["studio"]}
        return dict(await self.call("POST", "/api/incident-tickets/", json={**body, **fields}))

    async def move(self, incident: dict[str, Any], *statuses: str) -> dict[str, Any]:
        for status in statuses:
            body: dict[str, Any] = {"status": status}
            if status == "resolved":
                body["resolution"] = "Fixed."
            incident = await self.call(
                "PATCH", f"/api/incident-tickets/{incident['id']}/", json=body
            )
        return incident


async def _person(stack: Stack, name: str, role: str, first: str, last: str) -> None:
    async with stack.local.hub.store.unit_of_work(actor_id=None) as uow:
        profile = await create_user(
            uow, username=f"{name}-{uuid.uuid4().hex[:6]}", password=TEST_PASSWORD, role=role,
            first_name=first, last_name=last,
        )  # fmt: skip
        pair = await issue_token_pair(
            uow, user_id=profile["user"], secret_key=stack.settings.secret_key,
            access_ttl_secs=3600, refresh_ttl_secs=3600,
        )  # fmt: skip
    stack.ids[name] = profile["user"]
    stack.ids[f"{name}-profile"] = profile["id"]
    stack.tokens[name] = pair["access"]


async def seed_site(stack: Stack) -> None:
    """One site with people, a facility set, an incident type: what every test starts from."""
    for name, role, first, last in [
        ("boss", "admin", "Morgan", "Hale"),
        ("wall", "viewer", "Wall", "Display"),
        ("ana", "operator", "Ana", "Ferreira"),
        ("ben", "operator", "Benjamin", "Okafor-Lindqvist"),
        ("chloe", "operator", "Chloé", "Dubois"),
        ("dev", "manager", "Devika", "Raman"),
        ("fay", "operator", "Fay", "Morgan"),
    ]:
        await _person(stack, name, role, first, last)
    site = await stack.call(
        "POST", "/api/locations/",
        json={"name": "Broadcasting House", "code": "BH", "timezone": "Europe/London"},
    )  # fmt: skip
    stack.ids["site"] = site["id"]
    for key, name, kind in [
        ("studio", "Studio A", "studio"),
        ("mcr", "Master Control Room", "control_room"),
        ("tx", "Crystal Palace transmitter", "transmitter"),
    ]:
        facility = await stack.call(
            "POST", "/api/facilities/", json={"name": name, "location": site["id"], "kind": kind}
        )
        stack.ids[key] = facility["id"]
    for name in ("ana", "ben", "chloe", "dev", "fay"):  # the people of this site
        await stack.call(
            "PATCH", f"/api/profiles/{stack.ids[name + '-profile']}/", json={"location": site["id"]}
        )
    kind = await stack.call(
        "POST", "/api/incident-types/", json={"name": "Signal loss", "default_priority": "high"}
    )
    stack.ids["type"] = kind["id"]


async def seed_side_panels(stack: Stack) -> None:
    """Shifts now and next, events of the next hours, someone away, tickets due: full panels."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    for who, position, start_h, end_h, where in [
        ("ana", "MCR operator", -3, 5, "mcr"),
        ("ben", "Transmission engineer", -1, 7, "tx"),
        ("dev", "Duty manager", -2, 6, "mcr"),
        ("chloe", "MCR operator", 5, 13, "mcr"),
    ]:
        await stack.call("POST", "/api/shifts/", json={
            "user": stack.ids[who], "facility": stack.ids[where], "position": position,
            "start": (now + timedelta(hours=start_h)).isoformat(),
            "end": (now + timedelta(hours=end_h)).isoformat(), "status": "confirmed",
        })  # fmt: skip
    for title, start_h, hours, kind in [
        ("Evening news — live from Studio A", 1, 1, "broadcast"),
        ("Transmitter maintenance window", 3, 2, "maintenance"),
        ("Election night rehearsal", 6, 3, "broadcast"),
    ]:
        await stack.call("POST", "/api/scheduled-events/", json={
            "title": title, "kind": kind, "facility": stack.ids["studio"],
            "start": (now + timedelta(hours=start_h)).isoformat(),
            "end": (now + timedelta(hours=start_h + hours)).isoformat(),
        })  # fmt: skip
    today = date.today()
    request = await stack.call("POST", "/api/time-off-requests/", "fay", json={
        "kind": "sick", "start_date": today.isoformat(), "end_date": today.isoformat(),
        "reason": "confidential reason",
    })  # fmt: skip
    await stack.call(
        "PATCH", f"/api/time-off-requests/{request['id']}/", "dev", json={"status": "approved"}
    )
    for title, days, where in [
        ("Replace UPS batteries in MCR rack 3", -2, "mcr"),
        ("Calibrate Studio A reference monitors", 0, "studio"),
    ]:
        await stack.call("POST", "/api/service-tickets/", json={
            "title": title, "category": "maintenance", "facility": stack.ids[where],
            "due_date": (today + timedelta(days=days)).isoformat(),
        })  # fmt: skip


@asynccontextmanager
async def running_stack(workdir: Path) -> AsyncIterator[Stack]:
    """Everything up, seeded; torn down in reverse."""
    url = await create_postgres_database()
    redis = Redis(workdir)
    server: Server | None = None
    try:
        await asyncio.gather(asyncio.to_thread(migrate.upgrade, url), redis.start())
        settings = make_settings(url, workdir, redis_url=redis.url)
        server = Server(
            {
                "DATABASE_URL": url,
                "REDIS_URL": redis.url,
                "REDIS_NAMESPACE": settings.channel_namespace,
                "SECRET_KEY": settings.secret_key,
                "BMS_ENV": "test",
                "BMS_DATA_DIR": str(workdir),
                "LOG_LEVEL": "warning",
            },
            workdir,
        )
        await server.start()
        async with (
            started(settings) as local,
            async_playwright() as playwright,
            httpx.AsyncClient(timeout=30) as http,
        ):
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM, args=["--no-sandbox"]
            )
            stack = Stack(server, redis, settings, local, browser, http)
            await seed_site(stack)
            try:
                yield stack
            finally:
                await browser.close()
    finally:
        if server is not None:
            await server.stop()
        await redis.stop()
        await drop_postgres_database(url)


class Console:
    """Every console error and uncaught page error (minus the noise a test allows), and the
    page's WebSockets."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        self.allowed: re.Pattern[str] | None = None
        self.sockets: list[WebSocket] = []
        page.on("websocket", lambda socket: self.sockets.append(socket))
        page.on("console", self._message)
        page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))

    def _message(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def unexpected(self) -> list[str]:
        allowed = self.allowed
        return [e for e in self.errors if allowed is None or not allowed.search(e)]


@asynccontextmanager
async def wall_page(
    stack: Stack, key: str, *, size: tuple[int, int] = (1920, 1080), query: str = ""
) -> AsyncIterator[tuple[Page, Console]]:
    """The wall in a fresh browser context (its own local storage), live and loaded."""
    context = await stack.browser.new_context(viewport={"width": size[0], "height": size[1]})
    page = await context.new_page()
    console = Console(page)
    try:
        where = query or f"?location={stack.ids['site']}"
        await page.goto(f"{stack.base}/wall/{where}#key={key}")
        await page.wait_for_selector("body[data-ready][data-state=live]", timeout=15_000)
        yield page, console
    finally:
        await context.close()


async def row(page: Page, number: str, state: str = "visible", timeout: float = 1000) -> None:
    """Wait for the incident's board row to appear (or, with state="detached", to leave)."""
    selector = f"#board-rows .row:has(.cell.number:text-is('{number}'))"
    await page.wait_for_selector(selector, state=state, timeout=timeout)  # type: ignore[arg-type]


def elapsed_since(start: float) -> Callable[[], float]:
    loop = asyncio.get_running_loop()
    return lambda: loop.time() - start
