"""The wall display and bms-realtime.js in Debian's Chromium, against a real `bms serve` on
PostgreSQL + a private Redis: live changes, outages, revocation, screenshots."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from playwright.async_api import Page, expect

from db.tables import events
from domain.actors import Actor, Role
from domain.incident_tickets import create_incident_ticket
from tests.realtime.servers import E2E_ON_POSTGRES
from tests.web.wall_stack import (
    ARTIFACTS,
    CHROMIUM,
    NETWORK_NOISE,
    Stack,
    row,
    running_stack,
    seed_side_panels,
    wall_page,
)

pytestmark = [
    *E2E_ON_POSTGRES,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium"),
]
DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "wall.png"
LIVE = "body[data-state=live]"


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    async with running_stack(tmp_path_factory.mktemp("wall")) as running:
        yield running


async def _read_key(stack: Stack) -> dict[str, Any]:
    return await stack.api_key(scope="read", location=stack.ids["site"])


async def _boss_writes_while_server_is_down(stack: Stack, title: str) -> dict[str, Any]:
    """A change committed by another process (this test): only the events table knows."""
    actor = Actor(stack.ids["boss"], "boss", Role.ADMIN)
    async with stack.local.hub.store.unit_of_work(actor_id=actor.id) as uow:
        return await create_incident_ticket(
            uow, actor, {"title": title, "incident_type": stack.ids["type"]}
        )


async def test_incidents_appear_move_and_leave_live(stack: Stack) -> None:
    key = await _read_key(stack)
    async with wall_page(stack, key["key"]) as (page, console):
        # The key came in the fragment: kept in local storage, gone from the address bar.
        assert "key=" not in page.url
        assert await page.evaluate("localStorage.getItem('bms.wall.key')") == key["key"]
        first = await stack.incident(
            "Carrier lost on the north transmitter: three regions see black", priority="medium"
        )
        await row(page, first["number"])  # within a second of the REST answer
        await stack.move(first, "acknowledged")
        status = page.locator(f"#board-rows .row[data-id='{first['id']}'] .cell.status")
        await expect(status).to_have_text("Acknowledged", timeout=1000)
        urgent = await stack.incident("Studio A fire alarm", priority="critical")
        await row(page, urgent["number"])
        numbers = await page.locator("#board-rows .row:not(.head) .cell.number").all_inner_texts()
        assert numbers.index(urgent["number"]) < numbers.index(first["number"])
        assert await page.locator(f".row.fresh[data-id='{urgent['id']}']").count() == 1
        await stack.move(first, "in_progress", "resolved")
        await row(page, first["number"], state="detached")

        on_air = await stack.incident(
            "Playout server down", on_air_impact=True, facility=stack.ids["mcr"]
        )
        banner = page.locator("#offair .banner", has_text="Playout server down")
        await banner.wait_for(timeout=1000)
        assert "Master Control Room" in await banner.inner_text()
        counter = banner.locator(".counter")
        shown = await counter.inner_text()
        await expect(counter).not_to_have_text(shown, timeout=2500)  # counts each second
        await stack.move(on_air, "acknowledged", "in_progress", "resolved")
        await banner.wait_for(state="detached", timeout=1000)
        await stack.move(urgent, "acknowledged", "in_progress", "resolved")
        assert console.unexpected() == []


async def test_server_restart_shows_reconnecting_then_catches_up_without_reload(
    stack: Stack,
) -> None:
    key = await _read_key(stack)
    async with wall_page(stack, key["key"]) as (page, console):
        console.allowed = NETWORK_NOISE  # the browser's own log of refused connections
        await page.evaluate("window.__sameDocument = true")
        await stack.server.stop()
        await page.wait_for_selector("body[data-state=reconnecting].stale", timeout=10_000)
        assert "data as of" in await page.inner_text("#conn")
        made = await _boss_writes_while_server_is_down(stack, "Made while the server was down")
        await stack.server.start()
        await page.wait_for_selector(LIVE, timeout=30_000)
        await row(page, made["number"], timeout=5000)
        assert await page.evaluate("window.__sameDocument") is True  # never reloaded
        assert console.unexpected() == []
        await stack.move(made, "acknowledged", "in_progress", "resolved")


async def test_redis_restart_in_postgres_redis_mode_misses_nothing(stack: Stack) -> None:
    key = await _read_key(stack)
    async with wall_page(stack, key["key"]) as (page, console):
        console.allowed = NETWORK_NOISE
        await stack.redis.stop()
        through_rest = await stack.incident("Written through REST while Redis was down")
        elsewhere = await _boss_writes_while_server_is_down(stack, "Written elsewhere, Redis down")
        await stack.redis.start()
        await row(page, through_rest["number"], timeout=15_000)
        await row(page, elsewhere["number"], timeout=15_000)
        await page.wait_for_selector(LIVE, timeout=15_000)
        assert console.unexpected() == []
        for made in (through_rest, elsewhere):
            await stack.move(made, "acknowledged", "in_progress", "resolved")


async def test_revoking_the_key_shows_access_revoked_and_closes_the_socket(stack: Stack) -> None:
    key = await _read_key(stack)
    async with wall_page(stack, key["key"]) as (page, console):
        console.allowed = NETWORK_NOISE  # the 401 of the "revoked or down?" probe
        sockets = console.sockets
        assert sockets and not sockets[-1].is_closed()
        await stack.call("DELETE", f"/api/api-keys/{key['id']}/", "wall")
        await page.wait_for_selector("body[data-state=revoked]", timeout=2000)
        assert await page.is_visible("#revoked")
        assert await page.inner_text("#conn") == "Access revoked"
        assert all(socket.is_closed() for socket in sockets)
        assert console.unexpected() == []


async def _listed(page: Page, body: str) -> int:
    """Entries of a side panel: those shown plus the "+N more" it counts."""
    shown = await page.locator(f"{body} .line").count()
    more = await page.locator(f"{body} .more").all_inner_texts()
    return shown + sum(int(text.strip("+").split()[0]) for text in more)


async def _fits_without_scrolling(page: Page) -> None:
    size: dict[str, int] = await page.evaluate(
        "({h: document.documentElement.scrollHeight, w: document.documentElement.scrollWidth,"
        " vh: innerHeight, vw: innerWidth})"
    )
    assert size["h"] <= size["vh"] and size["w"] <= size["vw"], size
    clipped = await page.evaluate(
        "[...document.querySelectorAll('#board-rows .cell.number')]"
        ".filter(c => c.scrollWidth > c.clientWidth).length"
    )
    assert clipped == 0, "incident numbers must show in full"


async def test_full_wall_screenshots_at_1080p_and_2160p(stack: Stack) -> None:
    await seed_side_panels(stack)
    now = datetime.now(UTC)

    def ago(minutes: int) -> str:  # realistic ages, so the picture shows how they read
        return (now - timedelta(minutes=minutes)).isoformat()

    made = [
        await stack.incident(
            "Transmitter North lost carrier: regional opt-outs black on DTT multiplex 2",
            priority="critical", on_air_impact=True, facility=stack.ids["tx"], occurred_at=ago(4),
        ),
        await stack.incident(
            "Audio drift of 120 ms on the Studio A return feed to the network playout",
            priority="high", occurred_at=ago(23),
        ),
        await stack.incident("Subtitles missing on channel 2 after the 18:00 handover",
                             priority="medium", facility=stack.ids["mcr"], occurred_at=ago(72)),
        await stack.incident("Talkback panel 4 intermittent in MCR", priority="low",
                             facility=stack.ids["mcr"], assigned_to=stack.ids["ana"],
                             occurred_at=ago(160)),
    ]  # fmt: skip
    await stack.move(made[1], "acknowledged")
    key = await _read_key(stack)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for size in [(1920, 1080), (3840, 2160)]:
        async with wall_page(stack, key["key"], size=size) as (page, console):
            await row(page, made[-1]["number"])
            await page.wait_for_selector("#shifts-body .line >> text=Ana Ferreira")
            await page.wait_for_selector("#away-body .line >> text=Fay Morgan")
            shot = ARTIFACTS / f"wall-{size[0]}x{size[1]}.png"
            await page.screenshot(path=str(shot))
            assert "confidential" not in await page.inner_text("body")
            assert await _listed(page, "#events-body") == 3  # shown, or counted in "+N more"
            assert await page.locator("#service-body .line.overdue").count() == 1
            assert "Europe/London" in (await page.text_content("#local-label") or "")
            await _fits_without_scrolling(page)
            assert console.unexpected() == []
    if os.environ.get("BMS_UPDATE_DOCS_SCREENSHOT"):
        shutil.copyfile(ARTIFACTS / "wall-1920x1080.png", DOCS_SCREENSHOT)
    for incident in made:
        await stack.move(incident, "acknowledged", "in_progress", "resolved")


async def test_small_screen_light_theme_chosen_panels_rotate(stack: Stack) -> None:
    key = await _read_key(stack)
    query = f"?location={stack.ids['site']}&theme=light&panels=board,shifts,events&rotate=3"
    async with wall_page(stack, key["key"], size=(1024, 768), query=query) as (page, console):
        assert await page.locator("body.light.compact").count() == 1
        assert await page.is_hidden("[data-panel=away]") and await page.is_hidden("#offair")
        shown = page.locator("#side .panel.active")
        first = await shown.get_attribute("data-panel")
        assert first in ("shifts", "events")
        await expect(shown).not_to_have_attribute("data-panel", first, timeout=5000)
        await _fits_without_scrolling(page)
        assert console.unexpected() == []


async def test_without_a_key_or_session_the_wall_says_no_access(stack: Stack) -> None:
    context = await stack.browser.new_context()
    page = await context.new_page()
    try:
        await page.goto(f"{stack.base}/wall/")
        await page.wait_for_selector("body[data-state=revoked]", timeout=10_000)
        assert await page.inner_text("#conn") == "No access"
    finally:
        await context.close()


CLIENT_PAGE = """async ([key, minDelayMs]) => {
  const { connect } = await import("/static/bms-realtime.js");
  const log = (text) => {
    const item = document.createElement("li");
    item.textContent = text;
    document.body.append(item);
  };
  window.seen = [];
  window.client = connect({
    credential: key, minDelayMs, maxDelayMs: minDelayMs * 2,
    onState: (state) => { document.body.dataset.state = state; log("state:" + state); },
    onResync: (topics) => log("resync:" + topics.join(",")),
  });
  window.client.subscribe(["locations"], {
    onEvent: (e) => { window.seen.push(e.id); log("event:" + e.data.name); },
  });
}"""


async def test_js_client_resumes_after_a_drop_and_reports_resync(stack: Stack) -> None:
    key = await _read_key(stack)
    context = await stack.browser.new_context()
    page = await context.new_page()
    try:
        await page.goto(stack.base + "/")
        await page.evaluate(CLIENT_PAGE, [key["key"], 1500])
        await page.wait_for_selector(LIVE, timeout=10_000)

        async def site(name: str) -> None:
            await stack.call(
                "POST", "/api/locations/",
                json={"name": name, "code": name[-6:], "timezone": "UTC"},
            )  # fmt: skip

        await site("Resume site one")
        await page.wait_for_selector("li:text-is('event:Resume site one')", timeout=2000)
        await page.evaluate("window.client.socket.close()")  # a drop, as a proxy would
        await page.wait_for_selector("body[data-state=reconnecting]", timeout=2000)
        await site("Resume site two")  # while disconnected: the resume replays it
        await site("Resume site three")
        await page.wait_for_selector("li:text-is('event:Resume site three')", timeout=10_000)
        seen = await page.evaluate("window.seen")
        assert seen == sorted(set(seen)) and len(seen) == 3  # in order, each once
        log = await page.locator("li").all_inner_texts()
        assert log.index("state:reconnecting") < log.index("event:Resume site two")

        # History retention has passed the point a client resumes from: it is told to resync.
        async with stack.local.hub.store.connection() as conn:
            newest = await conn.fetch_val(sa.select(sa.func.max(events.c.id)))
            await conn.execute(events.delete().where(events.c.id < newest))
        await page.evaluate(
            "window.client.lastEventId = 1;"
            " window.client.subscribe(['shifts'], {onEvent: () => {}})"
        )
        await page.wait_for_selector("li:text-is('resync:shifts')", timeout=5000)
    finally:
        await context.close()
