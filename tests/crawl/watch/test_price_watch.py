"""Price watches end to end: a competitor's page on the local site, the real crawl worker and
the periodic round, the outbox, the shop's handler and its admin."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from shopkeeper.core.mail import OutboundMail
from shopkeeper.core.messaging.events import OutboxEvent
from shopkeeper.core.runtime import Runtime
from tests.crawl.watch.support import jsonld_page, wait_for_watch, watching
from tests.shop.admin.test_admin import STAFF_PASSWORD, admin_login, make_staff
from tests.support.crawl_site import CrawlSite
from tests.support.events import drain_events
from tests.support.shop import insert_product, problem_slug

SKU = "WATCH-1"


async def changed_events(runtime: Runtime) -> list[dict[str, Any]]:
    async with runtime.db.session() as session:
        rows = await session.scalars(
            select(OutboxEvent)
            .where(OutboxEvent.name == "CompetitorPriceChanged")
            .order_by(OutboxEvent.created_at)
        )
        return [row.payload for row in rows]


async def check_and_wait(client: httpx.AsyncClient, watch: dict[str, Any]) -> dict[str, Any]:
    before = watch["last_checked_at"]
    response = await client.post(f"/api/v1/crawl/watches/{watch['id']}/check")
    assert response.status_code == 202, response.text
    return await wait_for_watch(client, watch["sku"], lambda w: w["last_checked_at"] != before)


async def test_a_changed_price_yields_one_event_and_the_admin_shows_it(
    app: FastAPI, runtime: Runtime, client: httpx.AsyncClient, crawl_site: CrawlSite
) -> None:
    await insert_product(runtime, SKU, price=2500)  # ours: 25.00 USD
    crawl_site.pages[("shop", "/theirs/1")] = (200, jsonld_page(SKU, "24.00"))
    url = crawl_site.url("shop", "/theirs/1")

    created = await client.post(
        "/api/v1/crawl/watches", json={"sku": SKU, "url": url, "every": "6h"}
    )
    assert created.status_code == 201, created.text
    assert created.json()["every"] == "6h"
    async with watching(app, runtime):
        first = await wait_for_watch(client, SKU, lambda w: w["last_checked_at"] is not None)
        assert first["last_price"] == {"amount": 2400, "currency": "USD"}
        assert first["last_error"] is None

        unchanged = await check_and_wait(client, first)
        assert unchanged["last_price"] == {"amount": 2400, "currency": "USD"}

        crawl_site.pages[("shop", "/theirs/1")] = (200, jsonld_page(SKU, "19.00"))
        changed = await check_and_wait(client, unchanged)
        assert changed["last_price"] == {"amount": 1900, "currency": "USD"}

    events = await changed_events(runtime)
    changes = [event for event in events if event["old"] is not None]
    assert changes == [
        {
            "watch_id": first["id"],
            "sku": SKU,
            "url": url,
            "old": {"amount": 2400, "currency": "USD"},
            "new": {"amount": 1900, "currency": "USD"},
            "observed_at": changes[0]["observed_at"],
        }
    ]
    assert len(events) == 2  # the first price read, then the one change: not the unchanged check
    history = (await client.get(f"/api/v1/crawl/watches/{first['id']}/prices")).json()
    assert [(h["price"]["amount"], (h["previous"] or {}).get("amount")) for h in history] == [
        (1900, 2400),
        (2400, None),
    ]
    # Three fetches of the page, each through the frontier: the site saw exactly those.
    assert len([r for r in crawl_site.requests("shop") if r.path == "/theirs/1"]) == 3

    await drain_events(runtime)
    staff = await make_staff(runtime)
    assert (await admin_login(client, staff, STAFF_PASSWORD)).status_code == 302
    listing = await client.get("/admin/competitor-price/list")
    assert listing.status_code == 200, listing.text
    assert SKU in listing.text
    assert "25.00 USD" in listing.text  # ours
    assert "19.00 USD" in listing.text  # theirs, the latest
    assert "24.00 USD" not in listing.text
    assert "-24.0%" in listing.text


async def test_an_unreadable_page_records_no_price_and_no_event(
    app: FastAPI, runtime: Runtime, client: httpx.AsyncClient, crawl_site: CrawlSite
) -> None:
    crawl_site.pages[("shop", "/theirs/2")] = (200, jsonld_page(SKU, "10.00"))
    url = crawl_site.url("shop", "/theirs/2")
    created = await client.post("/api/v1/crawl/watches", json={"sku": SKU, "url": url})
    assert created.status_code == 201, created.text
    async with watching(app, runtime):
        read = await wait_for_watch(client, SKU, lambda w: w["last_checked_at"] is not None)
        crawl_site.pages[("shop", "/theirs/2")] = (200, b"<html><body>Sold out</body></html>")
        no_price = await check_and_wait(client, read)
        crawl_site.pages[("shop", "/theirs/2")] = (404, b"<html><body>gone</body></html>")
        gone = await check_and_wait(client, no_price)

    assert no_price["last_error"] == "no price on the page"
    assert gone["last_error"] == "HTTP 404"
    assert gone["last_price"] == {"amount": 1000, "currency": "USD"}  # the last one read
    assert len(await changed_events(runtime)) == 1  # the first read only
    history = (await client.get(f"/api/v1/crawl/watches/{read['id']}/prices")).json()
    assert len(history) == 1


async def test_a_selector_reads_a_page_without_product_markup(
    app: FastAPI, runtime: Runtime, client: httpx.AsyncClient, crawl_site: CrawlSite
) -> None:
    page = b'<html><body><h1>Kettle</h1><p>Now <span class="price">$12.50</span></p></body></html>'
    crawl_site.pages[("shop", "/theirs/3")] = (200, page)
    body = {"sku": SKU, "url": crawl_site.url("shop", "/theirs/3"), "selector": "span.price"}
    assert (await client.post("/api/v1/crawl/watches", json=body)).status_code == 201
    async with watching(app, runtime):
        read = await wait_for_watch(client, SKU, lambda w: w["last_checked_at"] is not None)
    assert read["last_price"] == {"amount": 1250, "currency": "USD"}


async def test_staff_are_mailed_when_a_competitor_undercuts_by_more_than_the_setting(
    app: FastAPI, runtime: Runtime, client: httpx.AsyncClient, crawl_site: CrawlSite
) -> None:
    runtime.settings.competitor_undercut_alert_percent = 10.0
    await insert_product(runtime, SKU, price=2500)
    staff = await make_staff(runtime)
    crawl_site.pages[("shop", "/theirs/4")] = (200, jsonld_page(SKU, "24.00"))  # 4% below
    url = crawl_site.url("shop", "/theirs/4")
    assert (await client.post("/api/v1/crawl/watches", json={"sku": SKU, "url": url})).is_success
    async with watching(app, runtime):
        read = await wait_for_watch(client, SKU, lambda w: w["last_checked_at"] is not None)
        await drain_events(runtime)
        assert await undercut_mails(runtime) == []
        crawl_site.pages[("shop", "/theirs/4")] = (200, jsonld_page(SKU, "20.00"))  # 20% below
        await check_and_wait(client, read)
    await drain_events(runtime)

    mails = await undercut_mails(runtime)
    assert [mail.recipient for mail in mails] == [staff]
    assert "20.0%" in mails[0].subject
    assert "20.00 USD" in mails[0].text_body and "25.00 USD" in mails[0].text_body
    assert url in mails[0].text_body


async def undercut_mails(runtime: Runtime) -> list[OutboundMail]:
    async with runtime.db.session() as session:
        rows = await session.scalars(
            select(OutboundMail).where(OutboundMail.template == "competitor_undercut")
        )
        return list(rows)


async def test_watch_api_errors(client: httpx.AsyncClient, crawl_site: CrawlSite) -> None:
    url = crawl_site.url("shop", "/theirs/5")
    for every in ("2s", "soon", "5x"):
        response = await client.post(
            "/api/v1/crawl/watches", json={"sku": SKU, "url": url, "every": every}
        )
        assert response.status_code == 422, response.text
    bad_url = await client.post("/api/v1/crawl/watches", json={"sku": SKU, "url": "ftp://x/"})
    assert bad_url.status_code == 422
    missing = "0190c0de-0000-7000-8000-000000000000"
    for response in (
        await client.post(f"/api/v1/crawl/watches/{missing}/check"),
        await client.get(f"/api/v1/crawl/watches/{missing}/prices"),
    ):
        assert response.status_code == 404
        assert problem_slug(response) == "watch-not-found"
    anonymous = await client.get("/api/v1/crawl/watches", headers={"Authorization": ""})
    assert anonymous.status_code == 401
