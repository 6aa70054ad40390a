"""The operator's day in a real browser: sign in with an e-mail, watch today's orders arrive
live, change a price, count stock, ship an order and decide a payment in review, all without
touching the API. The set-up (a catalog, a customer's orders) goes through the API, as a shop
and its customers would."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import httpx
from playwright.async_api import Page, expect

from shopkeeper.core.runtime import Runtime
from shopkeeper.core.settings import Settings
from tests.shop.admin.test_admin import STAFF_PASSWORD, add_user
from tests.shop.payments.helpers import deliver, sandbox_callback
from tests.support.browser import screenshot
from tests.support.shop import (
    checkout,
    create_cart,
    make_user,
    order_status,
    payment_of,
    start_payment,
    stock_of,
)


async def _shop(api: httpx.AsyncClient, staff: dict[str, str]) -> dict[str, Any]:
    """A product with two variants in two warehouses."""
    tag = secrets.token_hex(3).upper()
    skus = [f"MUG-{tag}-BLUE", f"MUG-{tag}-RED"]
    product = await api.post(
        "/api/v1/products",
        headers=staff,
        json={
            "name": f"Enamel mug {tag}",
            "variants": [
                {"sku": skus[0], "name": "Blue", "price": {"amount": 1_500, "currency": "USD"}},
                {"sku": skus[1], "name": "Red", "price": {"amount": 1_500, "currency": "USD"}},
            ],
        },
    )
    assert product.status_code == 201, product.text
    codes = [f"LON{tag}", f"MAN{tag}"]
    for code, name in zip(codes, ("London", "Manchester"), strict=True):
        made = await api.post(
            "/api/v1/warehouses", headers=staff, json={"code": code, "name": name}
        )
        assert made.status_code == 201, made.text
    for sku, code, units in (
        (skus[0], codes[0], 40),
        (skus[0], codes[1], 10),
        (skus[1], codes[0], 6),
    ):
        put = await api.put(f"/api/v1/stock/{sku}/{code}", headers=staff, json={"on_hand": units})
        assert put.status_code == 200, put.text
    return {"product": product.json(), "skus": skus, "warehouses": codes}


async def _order(
    api: httpx.AsyncClient, customer: dict[str, str], sku: str, *, reported: int | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A placed order and its sandbox payment; the provider reports `reported` (default: what
    was asked, which pays the order)."""
    cart_id = await create_cart(api, customer, [(sku, 2)])
    placed = await checkout(api, customer, cart_id)
    assert placed.status_code == 201, placed.text
    order = placed.json()
    payment = await start_payment(api, customer, order["id"], "sandbox")
    answer = await deliver(api, "sandbox", *sandbox_callback(payment, amount=reported))
    assert answer.status_code == 200, answer.text
    return order, await payment_of(api, customer, payment["id"])


async def _sign_in(page: Page, base: str, email: str) -> None:
    await page.goto(f"{base}/admin/")
    await expect(page.get_by_label("E-mail")).to_be_visible()
    await page.get_by_label("E-mail").fill(email)
    await page.get_by_label("Password").fill(STAFF_PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator(".page-title")).to_have_text("Today")


async def test_an_operator_runs_the_shop_from_the_admin(
    page: Page,
    runtime: Runtime,
    settings_factory: Callable[..., Settings],
    server_factory: Callable[..., Any],
) -> None:
    # The server relays events itself, as `make run` does: the page's live channel needs it.
    base = await server_factory(settings_factory(run_background_in_process=True))
    staff_api = await make_user(runtime, staff=True)
    customer = await make_user(runtime)
    operator = await add_user(runtime, staff=True)
    async with httpx.AsyncClient(base_url=base, timeout=30) as api:
        shop = await _shop(api, staff_api)
        blue, red = shop["skus"]
        london = shop["warehouses"][0]
        paid, _ = await _order(api, customer, blue)
        in_review, review_payment = await _order(api, customer, red, reported=2_000)
        assert await order_status(api, customer, paid["id"]) == "paid"
        assert review_payment["status"] == "needs_review"

        # Sign in with the e-mail address; the day's figures are on the home page.
        await page.goto(f"{base}/admin/")
        await expect(page.get_by_label("E-mail")).to_be_visible()
        await screenshot(page, "admin-login")
        await _sign_in(page, base, operator)
        await expect(page.locator("[data-stat=review]")).to_have_text("1")
        await expect(page.locator("[data-stat=orders]")).not_to_have_text("0")
        await expect(page.locator("#live-state")).to_have_text("live")
        # In the recent-orders table; the live feed may also link it once its events arrive.
        await expect(
            page.locator("#recent").get_by_role("link", name=paid["number"], exact=True)
        ).to_be_visible()

        # A customer orders while the operator watches: the channel brings it in.
        live_order, _ = await _order(api, customer, blue)
        feed = page.locator("#live-feed")
        await expect(feed).to_contain_text(f"New order {live_order['number']}")
        await expect(feed).to_contain_text(f"Order {live_order['number']} is paid")
        # ...and the figures follow it.
        await expect(page.locator("[data-stat=orders]")).to_have_text("3")
        await expect(
            page.locator("#recent").get_by_role("link", name=live_order["number"], exact=True)
        ).to_be_visible()
        await screenshot(page, "admin-home")

        # A new price for the blue mug, on the product page with its variants and stock.
        await page.get_by_role("link", name="Products").click()
        await page.get_by_role("link", name=shop["product"]["name"]).click()
        row = page.locator(f"tr[data-sku='{blue}']")
        await expect(row.get_by_label(f"On hand of {blue} in {london}")).to_have_value("40")
        await row.get_by_label(f"Price of {blue}").fill("12.34")
        await row.get_by_role("button", name="Save").click()
        await expect(page.locator("[data-notice]")).to_have_text(f"{blue} now sells at 12.34 USD.")
        await expect(row.get_by_label(f"Price of {blue}")).to_have_value("12.34")
        await screenshot(page, "admin-product")
        product = (await api.get(f"/api/v1/products/{shop['product']['id']}")).json()
        prices = {v["sku"]: v["price"] for v in product["variants"]}
        assert prices[blue] == {"amount": 1_234, "currency": "USD"}
        assert prices[red] == {"amount": 1_500, "currency": "USD"}

        # A delivery of 25 red mugs to London: the count goes on the stock page.
        await page.get_by_role("link", name="Stock").click()
        await page.get_by_placeholder("Product or SKU").fill(red)
        await page.get_by_role("button", name="Search").click()
        cell = page.locator(f"[data-stock='{red}@{london}']")
        await cell.get_by_label(f"On hand of {red} in {london}").fill("31")
        await cell.get_by_role("button", name="Set").click()
        await expect(page.locator("[data-notice]")).to_contain_text(
            f"{red} in {london}: 31 on hand"
        )
        await screenshot(page, "admin-stock")
        red_stock = await stock_of(api, staff_api, red)
        assert {lvl["warehouse"]: lvl["on_hand"] for lvl in red_stock["warehouses"]}[london] == 31

        # Ship the paid order, with its tracking number.
        await page.get_by_role("link", name="Orders").first.click()
        await expect(page.locator("#orders")).to_contain_text(in_review["number"])
        await screenshot(page, "admin-orders")
        await page.locator("#orders").get_by_role("link", name=paid["number"], exact=True).click()
        await expect(page.locator("#address")).to_contain_text("London")
        await expect(page.locator("#lines")).to_contain_text("Enamel mug")
        await page.get_by_placeholder("Tracking number (optional)").fill("1Z999AA10123456784")
        await page.get_by_role("button", name="Ship", exact=True).click()
        await expect(page.locator("[data-notice]")).to_have_text(
            f"Order {paid['number']} is shipped."
        )
        await expect(page.locator("#transitions")).to_contain_text("shipped")
        await screenshot(page, "admin-order")
        assert await order_status(api, customer, paid["id"]) == "shipped"

        # The payment in review: the provider captured 20.00 for an order of 30.00; accept it.
        await page.get_by_role("link", name="Payments to review").click()
        item = page.locator(f"tbody[data-payment='{review_payment['id']}']")
        await expect(item).to_contain_text(in_review["number"])
        await expect(item).to_contain_text("20.00 USD")
        await screenshot(page, "admin-review")
        await item.get_by_label("Note").fill("customer paid the rest by bank transfer")
        await item.get_by_role("button", name="Accept 20.00 USD").click()
        await expect(page.locator("[data-notice]")).to_contain_text("Accepted")
        await expect(page.locator("#review")).to_contain_text("Nothing to review.")
        resolved = await payment_of(api, customer, review_payment["id"])
        assert resolved["status"] == "succeeded"
        assert await order_status(api, customer, in_review["id"]) == "paid"
