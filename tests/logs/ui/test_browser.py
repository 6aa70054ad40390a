"""The logs UI in a real browser (Chromium driven by Playwright) against `shopkeeper serve`:
lines are ingested over HTTP, then searched, zoomed and tailed in the page. The screenshots
(var/screenshots/logs-*.png) are the ones in docs/logs.md."""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect

from shopkeeper.core.db import Database
from shopkeeper.core.migrate import upgrade_database
from tests.conftest import make_settings
from tests.logs.conftest import make_key
from tests.logs.ui.conftest import PASSWORD, make_user
from tests.support.browser import SCREENSHOTS

NS = 1_000_000_000
SERVICES = ("checkout", "catalog", "payments")


@dataclass(frozen=True)
class UiServer:
    url: str
    email: str
    write_key: str

    async def ingest(self, *documents: dict[str, Any]) -> None:
        body = b"".join(json.dumps(d).encode() + b"\n" for d in documents)
        async with httpx.AsyncClient(base_url=self.url, timeout=30) as http:
            answer = await http.post(
                "/api/v1/logs/ingest",
                content=body,
                headers={
                    "Authorization": f"Bearer {self.write_key}",
                    "Content-Type": "application/x-ndjson",
                },
            )
        assert answer.status_code == 200, answer.text


def history(now_ns: int) -> list[dict[str, Any]]:
    """Fifty minutes of a shop's request logs: a line every 15 s per service, errors rising
    in the last ten minutes."""
    documents = []
    for n in range(200):
        ts = now_ns - (50 * 60 - n * 15) * NS
        for index, service in enumerate(SERVICES):
            failing = n > 160 and (n + index) % 3 == 0
            documents.append(
                {
                    "ts": ts + index * 1_000_000,
                    "service": service,
                    "host": f"web-{index + 1}",
                    "level": "error" if failing else ("warn" if n % 17 == 0 else "info"),
                    "message": (
                        f"POST /api/v1/{service} failed: upstream timeout after 3000 ms"
                        if failing
                        else f"GET /api/v1/{service}/{n} 200 in {12 + n % 40} ms"
                    ),
                    "http": {"status": 504 if failing else 200, "route": f"/api/v1/{service}"},
                    "trace_id": secrets.token_hex(16),
                }
            )
    return documents


@pytest.fixture
async def ui_server(tmp_path: Path, server_factory: Callable[..., Any]) -> UiServer:
    settings = make_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'ui.db'}",
        tmp_path,
        logs_enabled=True,
        logs_dir=tmp_path / "chdb",
        logs_ship_own_logs=False,
        logs_syslog_port=0,
        # The embedded serve evaluates alerts itself (its scheduler, its outbox).
        run_background_in_process=True,
        scheduler_tick_seconds=0.2,
        outbox_poll_seconds=0.2,
    )
    database = Database(settings)
    try:
        await upgrade_database(database)
    finally:
        await database.dispose()
    email = await make_user(settings, "log_reader")
    key = await make_key(settings, scopes=["logs:write", "logs:admin"], tenant="default")
    url = await server_factory(settings)
    server = UiServer(url, email, key)
    await server.ingest(*history(time.time_ns()))
    return server


async def screenshot(page: Page, name: str) -> Path:
    """What the window shows (var/screenshots/<name>.png): a page of 600 lines is too long
    to read whole."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path))
    return path


async def sign_in(page: Page, server: UiServer) -> None:
    await page.set_viewport_size({"width": 1400, "height": 900})
    await page.goto(server.url + "/logs")
    await expect(page).to_have_url(re.compile(r"/logs/login"))
    await page.fill("input[name=email]", server.email)
    await page.fill("input[name=password]", PASSWORD)
    await screenshot(page, "logs-login")
    await page.click("button[type=submit]")
    await expect(page).to_have_url(server.url + "/logs")


async def test_search_with_suggestions_zoom_context_and_saved_searches(
    page: Page, ui_server: UiServer
) -> None:
    await sign_in(page, ui_server)
    await screenshot(page, "logs-overview")

    # The query box offers label names, then the values of the label being typed.
    box = page.locator("#query")
    await box.fill("")
    await box.type("{serv")
    await expect(page.locator("#suggestions li").first).to_contain_text("service")
    await box.press("Enter")  # takes the suggestion: {service="
    await expect(page.locator("#suggestions")).to_contain_text("checkout")
    await screenshot(page, "logs-suggest")
    await page.locator("#suggestions li", has_text="checkout").click()
    assert await box.input_value() == '{service="checkout"'
    await box.type('} |= "timeout"')
    await box.press("Enter")  # no suggestion open: runs the search

    summary = page.locator(".summary")
    await expect(summary).to_contain_text("13 matching lines")
    lines = page.locator("#results ol.lines > li.line")
    await expect(lines).to_have_count(13)
    await expect(lines.first.locator(".level")).to_have_text("error")
    assert await lines.first.evaluate("li => getComputedStyle(li).borderLeftColor") == (
        "rgb(210, 53, 59)"
    )
    await expect(page.locator("#histogram canvas")).to_have_count(1)
    assert "query=%7Bservice%3D%22checkout%22%7D" in page.url  # the search is in the URL
    await screenshot(page, "logs-search")

    # A line opens onto its attributes and, on request, its neighbours in the stream.
    first = lines.first
    await first.locator("summary").click()
    await expect(first.locator(".attributes")).to_contain_text("http_status")
    await expect(first.locator(".attributes")).to_contain_text("504")
    await first.locator(".context-button").click()
    # The newest error of its stream: itself and the ten before it.
    await expect(first.locator(".context li")).to_have_count(11)
    await expect(first.locator(".context li.here")).to_have_count(1)
    await screenshot(page, "logs-line")

    # Every service's lines, then a click on one bar of the histogram zooms into it.
    await box.fill('{service=~".+"}')
    await box.press("Enter")
    await expect(summary).to_contain_text("600 matching lines")
    over = page.locator("#histogram .u-over")
    area = await over.bounding_box()
    assert area is not None
    await page.mouse.click(area["x"] + area["width"] * 0.5, area["y"] + area["height"] - 3)
    await expect(page.locator("input[name=from]")).not_to_have_value("")
    await expect(summary).to_contain_text("zoom out")
    zoomed = int(re.sub(r"\D", "", (await summary.locator("strong").inner_text())))
    assert 0 < zoomed < 600
    await expect(lines).to_have_count(zoomed)
    await screenshot(page, "logs-zoom")

    # Saved searches: kept for this user, one click away.
    await page.fill("aside input[name=name]", "All services")
    await page.click("aside button[type=submit]")
    await expect(page.locator("#saved a", has_text="All services")).to_be_visible()
    await page.reload()
    await expect(page.locator("#saved a", has_text="All services")).to_be_visible()


async def test_live_tail_shows_a_line_sent_during_the_test(page: Page, ui_server: UiServer) -> None:
    await sign_in(page, ui_server)
    await page.fill("#query", '{service="checkout"} |= "payment"')
    await page.click("#live")
    await expect(page.locator("#tail")).to_have_attribute("data-state", "open")
    marker = f"payment captured for order {secrets.token_hex(4)}"
    await ui_server.ingest(
        {"service": "checkout", "level": "info", "message": marker},
        {"service": "catalog", "level": "info", "message": "payment not for this tail"},
        {"service": "checkout", "level": "warn", "message": "slow payment provider: 2400 ms"},
    )
    tail = page.locator("#tail-lines li")
    await expect(tail).to_have_count(2)
    await expect(tail.nth(1)).to_contain_text(marker)  # newest on top
    await expect(tail.nth(0)).to_contain_text("slow payment provider")
    await screenshot(page, "logs-tail")

    # A new search while tailing: the tail follows the new query.
    await page.fill("#query", '{service="catalog"} |= "reindexed"')
    await page.press("#query", "Enter")
    await expect(tail).to_have_count(0)
    await expect(page.locator("#tail")).to_have_attribute("data-state", "open")
    await ui_server.ingest(
        {"service": "checkout", "level": "info", "message": "reindexed, but not the catalog"},
        {"service": "catalog", "level": "error", "message": "catalog reindexed with 3 errors"},
    )
    await expect(tail).to_have_count(1)
    await expect(tail.first).to_contain_text("catalog reindexed with 3 errors")
    await page.click("#live")
    await expect(page.locator("#tail")).to_be_hidden()


async def test_an_alert_shows_as_firing_with_its_history(page: Page, ui_server: UiServer) -> None:
    rules = [
        {
            "name": "checkout timeouts",
            "query": 'sum(count_over_time({service="checkout"} |= "timeout" [1h]))',
            "op": ">",
            "threshold": 5,
            "for": "0s",
            "every": "1s",
            "labels": {"severity": "page"},
            "notify": [{"type": "email", "to": "oncall@example.com"}],
        },
        {
            "name": "catalog fatal errors",
            "query": 'sum(count_over_time({service="catalog", level="fatal"} [5m]))',
            "op": ">",
            "threshold": 0,
            "for": "1m",
            "every": "1s",
        },
    ]
    async with httpx.AsyncClient(
        base_url=ui_server.url, headers={"Authorization": f"Bearer {ui_server.write_key}"}
    ) as http:
        for rule in rules:
            created = await http.post("/api/v1/logs/alerts", json=rule)
            assert created.status_code == 201, created.text

    await sign_in(page, ui_server)
    await page.click("nav a:has-text('Alerts')")
    firing = page.locator("tr.alert-row", has_text="checkout timeouts")
    # The list refreshes itself every 5 s: the first evaluations arrive without a reload.
    await expect(firing.locator(".state")).to_have_text("firing", timeout=30_000)
    await expect(firing).to_contain_text("13")  # its last value
    quiet = page.locator("tr.alert-row", has_text="catalog fatal errors")
    await expect(quiet.locator(".state")).to_have_text("inactive")
    await expect(page.locator("tr.alert-row").first).to_contain_text("checkout timeouts")
    await screenshot(page, "logs-alerts")

    await firing.locator("a").click()
    await expect(page.locator("h1 .state")).to_have_text("firing")
    history = page.locator("table.history tbody tr")
    await expect(history.first).to_contain_text("firing")
    await expect(history.first).to_contain_text("inactive → firing")
    await expect(page.locator(".rule")).to_contain_text("oncall@example.com")
    await screenshot(page, "logs-alert")
