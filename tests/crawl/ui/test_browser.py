"""The crawl UI in a real browser (Chromium driven by Playwright) against `shopkeeper serve`
with its embedded crawl worker, scheduler and price-watch round, crawling the local test site.
The screenshots (var/screenshots/crawl-*.png) are the ones in docs/crawl.md."""

from __future__ import annotations

import asyncio
import csv
import io
import re
import secrets
import signal
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from playwright.async_api import Page, expect

from shopkeeper.core.settings import Settings
from shopkeeper.crawl.ui.templates import when
from tests.conftest import ServerProcess, settings_env
from tests.crawl.ui.conftest import PASSWORD, CrawlUi
from tests.crawl.watch.support import jsonld_page
from tests.support.browser import screenshot
from tests.support.crawl_site import CrawlSite

FINISH_TIMEOUT_MS = 90_000


async def sign_in(page: Page, ui: CrawlUi, email: str, target: str = "/crawl") -> None:
    await page.goto(ui.url + target)
    await expect(page).to_have_url(re.compile(r"/crawl/login"))
    await page.fill("input[name=email]", email)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await expect(page).to_have_url(ui.url + target)


async def start_crawl(ui: CrawlUi, site: CrawlSite, name: str, **politeness: Any) -> dict[str, Any]:
    async with ui.api() as api:
        answer = await api.post(
            "/crawls",
            json={
                "name": name,
                "seeds": [site.url("shop", "/")],
                "scope": {"allow": [site.authority("shop")], "max_pages": 25},
                "politeness": {"max_inflight_per_host": 1, **politeness},
            },
        )
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


async def crawl_of(ui: CrawlUi, crawl_id: str) -> dict[str, Any]:
    async with ui.api() as api:
        answer = await api.get(f"/crawls/{crawl_id}")
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


async def test_a_crawl_runs_live_on_the_page_and_is_paused_and_resumed(
    page: Page, crawl_ui: CrawlUi, crawl_site: CrawlSite
) -> None:
    await sign_in(page, crawl_ui, crawl_ui.operator)
    name = f"shop-{secrets.token_hex(3)}"
    crawl = await start_crawl(crawl_ui, crawl_site, name, delay_ms=400)

    # The overview lists it (htmx brings it in without a reload) with its live numbers.
    row = page.locator(f"tr[data-crawl='{crawl['id']}']")
    await expect(row).to_be_visible()
    await expect(row.locator("[data-stat=seen]")).not_to_have_text("0")
    await screenshot(page, "crawl-overview")

    await row.locator("a").click()
    await expect(page).to_have_url(f"{crawl_ui.url}/crawl/crawls/{crawl['id']}")
    status = page.locator("#crawl-status")
    await expect(page.locator("#hosts")).to_contain_text(crawl_site.authority("shop"))
    await page.click("button[value=pause]")
    await expect(status).to_have_text("paused")
    assert (await crawl_of(crawl_ui, crawl["id"]))["status"] == "paused"
    await screenshot(page, "crawl-paused")

    await page.click("button[value=resume]")
    await expect(status).not_to_have_text("paused")
    # The live fragment follows the crawl to its end without a reload.
    await expect(status).to_have_text("finished", timeout=FINISH_TIMEOUT_MS)
    done = await crawl_of(crawl_ui, crawl["id"])
    assert done["status"] == "finished"
    for key in ("seen", "fetched", "failed", "dead"):
        await expect(page.locator(f"#live [data-stat={key}]")).to_have_text(str(done["stats"][key]))
    assert done["stats"]["fetched"] > 0
    await expect(page.locator("button[value=pause], button[value=resume]")).to_have_count(0)
    await screenshot(page, "crawl-finished")

    # The pages table shows what the API lists, and filters by state.
    await page.reload()
    rows = page.locator("#pages tbody tr")
    await expect(rows.first).to_contain_text(crawl_site.base("shop"))
    await page.select_option("select[name=status]", "fetched")
    await expect(page).to_have_url(re.compile(r"status=fetched"))
    await expect(rows).to_have_count(min(done["stats"]["fetched"], 50))
    # The export downloads with the session (the API's bytes, which want a bearer token).
    async with page.expect_download() as download_info:
        await page.locator("a", has_text="CSV").click()
    download = await download_info.value
    assert download.suggested_filename == f"crawl-{crawl['id']}.csv"
    saved = await download.path()
    async with crawl_ui.api() as api:
        exported = await api.get(f"/crawls/{crawl['id']}/export", params={"format": "csv"})
    assert saved is not None and saved.read_bytes() == exported.content
    rows = list(csv.reader(io.StringIO(exported.text)))
    decided = sum(done["stats"][key] for key in ("fetched", "failed", "dead", "robots_denied"))
    assert len(rows) == 1 + decided

    await page.goto(crawl_ui.url + "/crawl/workers")
    await expect(page.locator("#workers .status-alive").first).to_be_visible()
    await screenshot(page, "crawl-workers")


async def test_a_schedule_shows_its_next_fire_time_and_is_disabled_and_enabled(
    page: Page, crawl_ui: CrawlUi, crawl_site: CrawlSite
) -> None:
    async with crawl_ui.api() as api:
        answer = await api.post(
            "/schedules",
            json={
                "name": f"nightly-{secrets.token_hex(3)}",
                "cron": "30 3 * * *",
                "timezone": "Europe/Berlin",
                "crawl": {
                    "name": "nightly shop",
                    "seeds": [crawl_site.url("shop", "/")],
                    "scope": {"allow": [crawl_site.authority("shop")], "max_pages": 10},
                },
            },
        )
    assert answer.status_code == 201, answer.text
    schedule = answer.json()
    next_fire = when(_parse(schedule["next_fire_at"]))
    # 03:30 in Berlin is 01:30 or 02:30 UTC.
    assert re.search(r" 0[12]:30:00 UTC$", next_fire), next_fire

    await sign_in(page, crawl_ui, crawl_ui.operator, "/crawl/schedules")
    row = page.locator(f"tr[data-schedule='{schedule['id']}']")
    await expect(row.locator(".next-fire")).to_contain_text(next_fire)
    await expect(row).to_contain_text("Europe/Berlin")
    await row.locator("a").click()
    await expect(page.locator("#next-fire")).to_contain_text(next_fire)
    await screenshot(page, "crawl-schedule")

    await page.click("button:has-text('Disable')")
    await expect(page.locator("#next-fire")).to_contain_text("never (disabled)")
    async with crawl_ui.api() as api:
        assert (await api.get(f"/schedules/{schedule['id']}")).json()["enabled"] is False
    await page.click("button:has-text('Enable')")
    await expect(page.locator("#next-fire")).to_contain_text(" UTC")
    async with crawl_ui.api() as api:
        assert (await api.get(f"/schedules/{schedule['id']}")).json()["enabled"] is True


def _parse(value: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def wait_for_price(ui: CrawlUi, sku: str, amount: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    async with ui.api() as api:
        while True:
            [watch] = (await api.get("/watches", params={"sku": sku})).json()
            if (watch["last_price"] or {}).get("amount") == amount:
                return
            assert time.monotonic() < deadline, watch
            await asyncio.sleep(0.2)


async def test_a_watch_shows_its_price_chart_after_a_price_change(
    page: Page, crawl_ui: CrawlUi, crawl_site: CrawlSite
) -> None:
    sku = f"SKU-{secrets.token_hex(3).upper()}"
    path = f"/competitor/{sku}"
    crawl_site.pages[("shop", path)] = (200, jsonld_page(sku, "24.90"))
    async with crawl_ui.api() as api:
        answer = await api.post(
            "/watches", json={"sku": sku, "url": crawl_site.url("shop", path), "every": "1h"}
        )
    assert answer.status_code == 201, answer.text
    watch = answer.json()
    await wait_for_price(crawl_ui, sku, 2490)

    await sign_in(page, crawl_ui, crawl_ui.operator, "/crawl/watches")
    row = page.locator(f"tr[data-watch='{watch['id']}']")
    await expect(row.locator(".price")).to_have_text("24.90 USD")

    # Their price drops; "Check now" fetches the page again.
    crawl_site.pages[("shop", path)] = (200, jsonld_page(sku, "19.49"))
    await row.locator("a").first.click()
    await page.click("button:has-text('Check now')")
    await expect(page.locator("form", has_text="queued")).to_be_visible()
    await wait_for_price(crawl_ui, sku, 1949)
    await page.goto(f"{crawl_ui.url}/crawl/watches/{watch['id']}")
    await expect(page.locator("#last-price")).to_have_text("19.49 USD")
    await expect(page.locator("#changes tbody tr")).to_have_count(2)
    await expect(page.locator("#changes tbody tr").first).to_contain_text("24.90 USD")
    chart = page.locator("#price-chart")
    await expect(chart).to_have_attribute("data-drawn", "true")
    await expect(chart.locator(".uplot canvas")).to_be_visible()
    await screenshot(page, "crawl-watch")


async def test_a_read_only_user_sees_no_actions_and_cannot_post_them(
    page: Page, crawl_ui: CrawlUi, crawl_site: CrawlSite
) -> None:
    crawl = await start_crawl(crawl_ui, crawl_site, f"watched-{secrets.token_hex(3)}", delay_ms=50)
    async with crawl_ui.api() as api:
        await api.post(f"/crawls/{crawl['id']}/pause")
    await sign_in(page, crawl_ui, crawl_ui.viewer, f"/crawl/crawls/{crawl['id']}")
    await expect(page.locator(".topbar")).to_contain_text("read-only")
    await expect(page.locator("#crawl-status")).to_have_text("paused")
    await expect(page.locator("#live button")).to_have_count(0)
    await screenshot(page, "crawl-read-only")
    await page.goto(crawl_ui.url + "/crawl/spiders")
    await expect(page.locator("form.run")).to_have_count(0)

    # The browser's own session, posting the form a writer would: refused.
    answer = await page.context.request.post(f"{crawl_ui.url}/crawl/crawls/{crawl['id']}/resume")
    assert answer.status == 403
    assert (await answer.json())["type"].endswith("permission-denied")
    assert (await crawl_of(crawl_ui, crawl["id"]))["status"] == "paused"


async def test_signing_in_needs_crawl_read(page: Page, crawl_ui: CrawlUi) -> None:
    await page.goto(crawl_ui.url + "/crawl")
    await expect(page).to_have_url(re.compile(r"/crawl/login\?next=/crawl"))
    await page.fill("input[name=email]", crawl_ui.operator)
    await page.fill("input[name=password]", "not-the-password")
    await page.click("button[type=submit]")
    await expect(page.locator("[role=alert]")).to_contain_text("may not read crawls")
    await screenshot(page, "crawl-login")
    async with httpx.AsyncClient(base_url=crawl_ui.url) as http:
        assert (await http.get("/crawl/workers")).status_code == 303


async def test_a_spider_is_run_and_its_job_failed_retried_and_cancelled(
    page: Page, crawl_ui: CrawlUi
) -> None:
    await sign_in(page, crawl_ui, crawl_ui.operator, "/crawl/spiders")
    await expect(page.locator("#spiders")).to_contain_text("Sleeps SLEEP_S seconds")
    await screenshot(page, "crawl-spiders")

    # `failing` exits 3 on every attempt; the job page follows it without a reload.
    await page.locator("tr", has_text="failing").locator("button").click()
    await expect(page).to_have_url(re.compile(r"/crawl/jobs/[0-9a-f-]{36}$"))
    job_id = page.url.rsplit("/", 1)[1]
    status = page.locator("#job-status")
    await expect(status).to_have_text(re.compile("failed|dead"), timeout=FINISH_TIMEOUT_MS)
    async with crawl_ui.api() as api:
        job = (await api.get(f"/jobs/{job_id}")).json()
    await expect(status).to_have_text(job["status"])
    await expect(page.locator("#job")).to_contain_text(job["error"])
    logs = await page.locator("#job-logs").get_attribute("href")
    assert logs is not None and logs.startswith("/logs?query=")
    assert parse_qs(urlsplit(logs).query)["query"] == [f'{{service="crawl"}} | job_id="{job_id}"']
    await screenshot(page, "crawl-job")

    # Retried, it runs again and ends again: the page shows the new end.
    await page.click("button[value=retry]")
    deadline = time.monotonic() + FINISH_TIMEOUT_MS / 1000
    async with crawl_ui.api() as api:
        while True:
            again = (await api.get(f"/jobs/{job_id}")).json()
            if again["finished_at"] and again["finished_at"] != job["finished_at"]:
                break
            assert time.monotonic() < deadline, again
            await asyncio.sleep(0.2)
    await page.reload()
    await expect(status).to_have_text(again["status"])
    assert again["started_at"] > job["finished_at"]

    # A long sleeper is cancelled from its page.
    await page.goto(crawl_ui.url + "/crawl/spiders")
    row = page.locator("tr", has_text="sleeper").filter(has_text="Sleeps")
    await row.locator("input[name=args]").fill('{"seconds": 60}')
    await row.locator("button").click()
    await expect(page).to_have_url(re.compile(r"/crawl/jobs/"))
    await page.click("button[value=cancel]")
    await expect(page.locator("#job-status")).to_have_text("cancelled", timeout=FINISH_TIMEOUT_MS)
    await page.goto(crawl_ui.url + "/crawl/jobs?status=cancelled")
    await expect(page.locator("#jobs")).to_contain_text("sleeper")


async def test_a_killed_worker_turns_from_alive_to_lost(
    page: Page,
    crawl_ui: CrawlUi,
    ui_settings: Settings,
    process_factory: Callable[..., ServerProcess],
) -> None:
    name = f"w-{secrets.token_hex(3)}"
    env = settings_env(ui_settings, SHOPKEEPER_CRAWL_API_URL=f"{crawl_ui.url}/api/v1")
    worker = process_factory(["crawl", "worker", "--name", name, "--concurrency", "2"], env)
    await sign_in(page, crawl_ui, crawl_ui.viewer, "/crawl/workers")
    row = page.locator("#workers tr", has_text=name)
    await expect(row.locator(".status")).to_have_text("alive", timeout=FINISH_TIMEOUT_MS)

    # SIGKILL: no clean goodbye, so it stays listed, and is lost after three missed heartbeats;
    # the page, polling, shows it without a reload.
    worker.stop(signal.SIGKILL)
    await expect(row.locator(".status")).to_have_text("lost", timeout=FINISH_TIMEOUT_MS)
    await expect(page.locator("#workers tr", has_text="serve").locator(".status")).to_have_text(
        "alive"
    )
    await screenshot(page, "crawl-workers-lost")
