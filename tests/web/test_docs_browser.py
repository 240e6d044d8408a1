"""The API docs page runs Swagger UI under its Content-Security-Policy in a real browser
(issue #10 §5): local assets only, no CSP violation in the console."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from playwright.async_api import async_playwright

from db import migrate
from tests.realtime.servers import Server
from tests.web.wall_stack import CHROMIUM

pytestmark = pytest.mark.e2e


async def test_docs_page_renders_with_no_csp_errors(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'bms.sqlite3'}"
    await asyncio.to_thread(migrate.upgrade, url)
    env = {
        "DATABASE_URL": url, "REDIS_URL": "", "SECRET_KEY": "docs-" + "x" * 40,
        "BMS_ENV": "test", "BMS_DATA_DIR": str(tmp_path), "LOG_LEVEL": "warning",
    }  # fmt: skip
    server = Server(env, tmp_path)
    await server.start()
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM, args=["--no-sandbox"]
            )
            try:
                page = await browser.new_page()
                errors: list[str] = []
                remote: list[str] = []
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
                page.on(
                    "request",
                    lambda r: remote.append(r.url) if not r.url.startswith(server.base) else None,
                )
                response = await page.goto(server.base + "/api/docs/")
                assert response is not None and response.ok
                assert "script-src" in (await response.all_headers())["content-security-policy"]
                # Swagger UI rendered the document: one operation block per endpoint.
                await page.wait_for_selector(".opblock", timeout=30_000)
                assert await page.locator(".opblock").count() > 10
                assert errors == []
                assert remote == []
            finally:
                await browser.close()
    finally:
        await server.stop()
