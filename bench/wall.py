"""The wall under load: Chromium with /wall/ open on 300 open incidents while a writer
changes them at 50 per second for 60 s.

Prints long tasks (> 50 ms), the worst frame, JS heap and DOM nodes before and after
(after a forced GC), and delivery-to-paint latency (WebSocket message received in the page
→ the frame that shows it) p50/p99, with the machine's load. Targets: no long task, heap
growth under 5 MB, p99 under 100 ms.

    .venv/bin/python bench/wall.py [--incidents 300] [--rate 50] [--seconds 60]

Needs PostgreSQL and Redis (as the other benchmarks: BMS_BENCH_POSTGRES_URL,
BMS_BENCH_REDIS_URL) and Debian's Chromium at /usr/bin/chromium.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import CDPSession, Page, async_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ws_common import (
    Server,
    create_database,
    drop_database,
    make_user_with_token,
    percentile,
    server_env,
)

CHROMIUM = "/usr/bin/chromium"
PRIORITIES = ["low", "medium", "high", "critical"]
# Registered in the page once it is loaded: long tasks and the longest gap between frames.
PROBE = """() => {
  window.__bench = {long: [], worst: 0};
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) window.__bench.long.push(entry.duration);
  }).observe({type: "longtask"});
  let last = performance.now();
  const frame = (now) => {
    window.__bench.worst = Math.max(window.__bench.worst, now - last);
    last = now;
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
  window.__bmsWall.paints.length = 0;
  window.__bmsWall.commits.length = 0;
  window.__bmsWall.renders.length = 0;
}"""


async def seed(http: httpx.AsyncClient, base: str, count: int) -> tuple[int, list[int]]:
    """One site, five facilities, `count` open incidents; returns (site, incident ids)."""
    site = (
        await http.post(
            f"{base}/api/locations/",
            json={"name": "Broadcasting House", "code": "BH", "timezone": "Europe/London"},
        )
    ).json()
    facilities = [
        (await http.post(f"{base}/api/facilities/", json={
            "name": f"Studio {n}", "location": site["id"], "kind": "studio"})).json()["id"]
        for n in range(5)
    ]  # fmt: skip
    kind = (await http.post(f"{base}/api/incident-types/", json={"name": "Fault"})).json()
    semaphore = asyncio.Semaphore(8)

    async def one(n: int) -> int:
        async with semaphore:
            response = await http.post(f"{base}/api/incident-tickets/", json={
                "title": f"Seeded incident {n}: intermittent fault on the studio feed",
                "incident_type": kind["id"], "facility": facilities[n % 5],
                "priority": PRIORITIES[n % 4], "on_air_impact": n < 2,
            })  # fmt: skip
            assert response.status_code == 201, response.text
            return int(response.json()["id"])

    return site["id"], list(await asyncio.gather(*(one(n) for n in range(count))))


async def writer(
    http: httpx.AsyncClient, base: str, ids: list[int], rate: float, seconds: float
) -> tuple[int, int]:
    """PATCH priority or title at a steady rate; returns (sent, failed)."""
    interval = 1 / rate
    start = time.monotonic()
    tasks: set[asyncio.Task[None]] = set()
    sent = failed = 0
    counter = itertools.count()

    priority = {incident: n % 4 for n, incident in enumerate(ids)}  # as seeded

    async def change(n: int) -> None:
        nonlocal failed
        incident = ids[(n * 7) % len(ids)]
        body: dict[str, Any] = {"title": f"Changed {n}: feed fault"}
        if n % 2:  # every change is a real one: each emits an event; half move the row
            priority[incident] = (priority[incident] + 1) % 4
            body = {"priority": PRIORITIES[priority[incident]]}
        response = await http.patch(f"{base}/api/incident-tickets/{incident}/", json=body)
        if response.status_code != 200:
            failed += 1

    while (elapsed := time.monotonic() - start) < seconds:
        n = next(counter)
        task = asyncio.create_task(change(n))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        sent += 1
        await asyncio.sleep(max(0.0, (n + 1) * interval - elapsed))
    await asyncio.gather(*tasks)
    return sent, failed


async def snapshot(page: Page, cdp: CDPSession) -> dict[str, float]:
    """JS heap (after a GC) and DOM nodes."""
    await cdp.send("HeapProfiler.collectGarbage")
    metrics = {m["name"]: m["value"] for m in (await cdp.send("Performance.getMetrics"))["metrics"]}
    elements = await page.evaluate("document.getElementsByTagName('*').length")
    return {
        "heap_mb": metrics["JSHeapUsedSize"] / 2**20,
        "nodes": metrics["Nodes"],
        "elements": float(elements),
    }


async def run(args: argparse.Namespace) -> None:
    url = await create_database()
    workdir = Path(tempfile.mkdtemp(prefix="bms-bench-wall-"))
    env = server_env(url, f"bench:{uuid.uuid4().hex[:8]}", workdir)
    # Production settings (BMS_ENV=production refuses to start without these); the page
    # authenticates with an API key, so secure-only cookies change nothing over plain HTTP.
    env.update(ALLOWED_HOSTS="127.0.0.1,localhost", COOKIE_SECURE="true")
    server = Server(env)
    try:
        await server.start()
        token = await make_user_with_token(url, "bench-admin", "admin")
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(headers=headers, timeout=30) as http:
            site, ids = await seed(http, server.base, args.incidents)
            body = {"name": "bench wall", "scope": "read", "location": site}
            key = (await http.post(f"{server.base}/api/api-keys/", json=body)).json()["key"]
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(
                    executable_path=CHROMIUM, args=["--no-sandbox"]
                )
                page = await browser.new_page(viewport={"width": 1920, "height": 1080})
                cdp = await page.context.new_cdp_session(page)
                await cdp.send("Performance.enable")
                await page.goto(f"{server.base}/wall/?location={site}#key={key}")
                await page.wait_for_selector("body[data-ready][data-state=live]", timeout=60_000)
                await page.wait_for_selector("#board-rows .row:not(.head)")
                await asyncio.sleep(2)  # the board settles on the rows that fit
                await page.evaluate(PROBE)
                before = await snapshot(page, cdp)
                load_before = os.getloadavg()
                sent, failed = await writer(http, server.base, ids, args.rate, args.seconds)
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:  # until the last events reached the page
                    if await page.evaluate("window.__bmsWall.applied") >= sent:
                        break
                    await asyncio.sleep(0.1)
                load_after = os.getloadavg()
                probe = await page.evaluate("window.__bench")
                paints = await page.evaluate("window.__bmsWall.paints")
                commits = await page.evaluate("window.__bmsWall.commits")
                renders = await page.evaluate("window.__bmsWall.renders")
                applied = await page.evaluate("window.__bmsWall.applied")
                after = await snapshot(page, cdp)
                if args.screenshot:
                    await page.screenshot(path=args.screenshot)
                await browser.close()
    finally:
        await server.stop()
        await drop_database(url)
    report(
        args, sent, failed, applied, probe, paints, commits, renders, before, after,
        load_before, load_after,
    )  # fmt: skip


def report(
    args: argparse.Namespace,
    sent: int,
    failed: int,
    applied: int,
    probe: dict[str, Any],
    paints: list[float],
    commits: list[float],
    renders: list[float],
    before: dict[str, float],
    after: dict[str, float],
    load_before: tuple[float, float, float],
    load_after: tuple[float, float, float],
) -> None:
    long_tasks = probe["long"]
    heap = f"{before['heap_mb']:.2f} → {after['heap_mb']:.2f} MB"
    heap += f" ({after['heap_mb'] - before['heap_mb']:+.2f} MB)"
    nodes = f"{before['nodes']:.0f} → {after['nodes']:.0f}"
    nodes += f" (elements {before['elements']:.0f} → {after['elements']:.0f})"
    latency = f"{percentile(paints, 50):.1f} / {percentile(paints, 99):.1f} ms"
    latency += f" ({len(paints)} events)"
    work = f"{percentile(renders, 50):.1f} / {percentile(renders, 99):.1f} / "
    work += f"{max(renders, default=0):.1f} ms ({len(renders)} frames)"
    end_to_end = f"{percentile(commits, 50):.0f} / {percentile(commits, 99):.0f} ms"
    rows = [
        ("changes sent (failed)", f"{sent} ({failed}) in {args.seconds:.0f} s at {args.rate}/s"),
        ("events applied by the wall", str(applied)),
        ("long tasks > 50 ms", f"{len(long_tasks)}" + (
            f" (longest {max(long_tasks):.0f} ms)" if long_tasks else "")),
        ("worst frame", f"{probe['worst']:.0f} ms"),
        ("wall's work per frame p50 / p99 / max", work),
        ("JS heap before → after", heap),
        ("DOM nodes before → after", nodes),
        ("delivery → paint p50 / p99", latency),
        ("commit → paint p50 / p99", end_to_end),
        ("machine", f"{os.cpu_count()} cores; load avg 1 min {load_before[0]:.2f} before, "
                    f"{load_after[0]:.2f} after"),
    ]  # fmt: skip
    width = max(len(name) for name, _ in rows)
    print(f"\nbench/wall.py: {args.incidents} open incidents, Chromium 1920x1080")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--incidents", type=int, default=300)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--screenshot", help="save the wall as it looks at the end (PNG)")
    asyncio.run(run(parser.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
