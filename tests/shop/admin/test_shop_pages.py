"""The shop's admin pages over HTTP: what each role sees and may do, and that every button goes
through the domain's rules (a refused transition is a message, not a changed row)."""

from __future__ import annotations

import html
import re
import secrets
import uuid
from typing import Any

import httpx
from sqlalchemy import event

from shopkeeper.accounts.models import User, UserRole
from shopkeeper.core.runtime import Runtime
from tests.shop.admin.test_admin import STAFF_PASSWORD, password_hash
from tests.shop.payments.helpers import deliver, sandbox_callback
from tests.support.shop import (
    OrderFactory,
    create_sku,
    order_status,
    payment_of,
    start_payment,
    stock_of,
)


async def _staff(runtime: Runtime, client: httpx.AsyncClient, role: str) -> None:
    """A staff user with `role`, signed in to the admin with the e-mail form."""
    email = f"{role}-{secrets.token_hex(4)}@example.com"
    async with runtime.db.session() as session:
        user = User(email=email, password_hash=password_hash(STAFF_PASSWORD), is_staff=True)
        user.role_rows = [UserRole(role=role)]
        session.add(user)
        await session.commit()
    signed_in = await client.post("/admin/login", data={"email": email, "password": STAFF_PASSWORD})
    assert signed_in.status_code == 302, signed_in.text


async def _paid_order(
    client: httpx.AsyncClient, customer: dict[str, str], new_order: OrderFactory
) -> tuple[dict[str, Any], dict[str, Any]]:
    order = await new_order(customer)
    payment = await start_payment(client, customer, order["id"], "sandbox")
    assert (await deliver(client, "sandbox", *sandbox_callback(payment))).status_code == 200
    assert await order_status(client, customer, order["id"]) == "paid"
    return order, payment


def _notice(page: httpx.Response) -> str:
    found = re.search(r'data-notice="\w+">([^<]*)<', page.text)
    return html.unescape(found.group(1)) if found else ""


async def test_the_sign_in_form_asks_for_an_e_mail(client: httpx.AsyncClient) -> None:
    page = await client.get("/admin/login")
    assert '<label class="form-label" for="email">E-mail</label>' in page.text
    assert 'name="email" type="email"' in page.text
    assert "Username" not in page.text


async def test_a_viewer_sees_the_shop_but_changes_nothing(
    client: httpx.AsyncClient,
    runtime: Runtime,
    customer_headers: dict[str, str],
    staff_headers: dict[str, str],
    new_order: OrderFactory,
) -> None:
    order, _ = await _paid_order(client, customer_headers, new_order)
    await _staff(runtime, client, "shop_viewer")

    page = await client.get(f"/admin/shop/orders/{order['id']}")
    assert page.status_code == 200
    assert order["number"] in page.text and "Ada Lovelace" in page.text
    assert ">Ship</button>" not in page.text and ">Refund</button>" not in page.text

    refused = await client.post(
        f"/admin/shop/orders/{order['id']}/ship", data={}, follow_redirects=True
    )
    assert _notice(refused) == "Your role does not allow this (it needs shop:write)."
    assert await order_status(client, customer_headers, order["id"]) == "paid"

    sku = order["lines"][0]["sku"]
    before = await stock_of(client, staff_headers, sku)
    warehouse = before["warehouses"][0]["warehouse"]
    stock_page = await client.post(
        f"/admin/shop/stock/{sku}/{warehouse}", data={"on_hand": "500"}, follow_redirects=True
    )
    assert "needs shop:write" in _notice(stock_page)
    assert await stock_of(client, staff_headers, sku) == before
    other = await new_order(customer_headers)
    in_review = await start_payment(client, customer_headers, other["id"], "sandbox")
    callback = sandbox_callback(in_review, amount=1)
    assert (await deliver(client, "sandbox", *callback)).status_code == 200
    review = await client.get("/admin/shop/review")
    assert other["number"] in review.text and "0.01 USD" in review.text
    assert "Deciding needs payments:refund." in review.text and ">Accept" not in review.text
    accepted = await client.post(
        f"/admin/shop/review/{in_review['id']}/accept", follow_redirects=True
    )
    assert "needs payments:refund" in _notice(accepted)
    assert (await payment_of(client, customer_headers, in_review["id"]))["status"] == (
        "needs_review"
    )


async def test_staff_refund_cancel_and_refused_transitions_go_through_the_services(
    client: httpx.AsyncClient,
    runtime: Runtime,
    customer_headers: dict[str, str],
    staff_headers: dict[str, str],
    new_order: OrderFactory,
) -> None:
    paid, payment = await _paid_order(client, customer_headers, new_order)
    pending = await new_order(customer_headers)
    await _staff(runtime, client, "shop_staff")

    # Delivering an order that was never shipped is not a transition the orders allow.
    refused = await client.post(f"/admin/shop/orders/{paid['id']}/deliver", follow_redirects=True)
    assert "paid" in _notice(refused) and "delivered" in _notice(refused)
    assert await order_status(client, customer_headers, paid["id"]) == "paid"

    # A partial refund, typed as money, then the rest.
    url = f"/admin/shop/orders/{paid['id']}/payments/{payment['id']}/refund"
    form = {"amount": "5.00", "reason": "chipped", "once": uuid.uuid4().hex}
    part = await client.post(url, data=form, follow_redirects=True)
    assert _notice(part) == "Refunded 5.00 USD."
    # The same form sent again (a double click, a reload) refunds nothing more.
    again = await client.post(url, data=form, follow_redirects=True)
    assert _notice(again) == "Refunded 5.00 USD."
    refunded = (await payment_of(client, customer_headers, payment["id"]))["refunded"]
    assert refunded == {"amount": 500, "currency": "USD"}
    assert await order_status(client, customer_headers, paid["id"]) == "partially_refunded"
    bad = await client.post(url, data={"amount": "5.001"}, follow_redirects=True)
    assert _notice(bad) == "'5.001' is not an amount in USD."
    rest = await client.post(url, data={"amount": ""}, follow_redirects=True)
    assert _notice(rest) == "Refunded 25.00 USD."
    assert (await payment_of(client, customer_headers, payment["id"]))["status"] == "refunded"
    assert await order_status(client, customer_headers, paid["id"]) == "refunded"
    assert "chipped" in rest.text

    # Cancelling an unpaid order gives its units back.
    sku = pending["lines"][0]["sku"]
    reserved = (await stock_of(client, staff_headers, sku))["reserved"]
    cancelled = await client.post(
        f"/admin/shop/orders/{pending['id']}/cancel", follow_redirects=True
    )
    assert _notice(cancelled) == f"Order {pending['number']} is cancelled."
    assert (await stock_of(client, staff_headers, sku))["reserved"] == reserved - 2

    # A count below what open orders hold is refused by the inventory, not written.
    held = await new_order(customer_headers)
    held_sku = held["lines"][0]["sku"]
    warehouse = (await stock_of(client, staff_headers, held_sku))["warehouses"][0]["warehouse"]
    below = await client.post(
        f"/admin/shop/stock/{held_sku}/{warehouse}", data={"on_hand": "1"}, follow_redirects=True
    )
    assert "reserved for orders" in _notice(below)

    missing = await client.get(f"/admin/shop/orders/{uuid.uuid4()}")
    assert missing.status_code == 404


async def test_a_price_that_is_not_money_is_refused(
    client: httpx.AsyncClient, runtime: Runtime, staff_headers: dict[str, str]
) -> None:
    sku = await create_sku(client, staff_headers, price=1_000)
    await _staff(runtime, client, "shop_staff")
    for typed in ("ten", "-1", "1.234"):
        page = await client.post(
            f"/admin/shop/variants/{sku}/edit", data={"price": typed}, follow_redirects=True
        )
        assert _notice(page) == f"{typed!r} is not a price in USD."
    page = await client.post(
        f"/admin/shop/variants/{sku}/edit", data={"price": "9,99"}, follow_redirects=True
    )
    assert _notice(page) == f"{sku} now sells at 9.99 USD."


async def _statements(runtime: Runtime, client: httpx.AsyncClient, path: str) -> int:
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    engine = runtime.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        response = await client.get(path)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert response.status_code == 200, response.text
    return len(statements)


async def test_the_pages_read_in_a_fixed_number_of_statements(
    client: httpx.AsyncClient,
    runtime: Runtime,
    customer_headers: dict[str, str],
    new_order: OrderFactory,
) -> None:
    await _staff(runtime, client, "shop_staff")
    paths = ["/admin/shop/today", "/admin/shop/orders", "/admin/shop/products", "/admin/shop/stock"]
    await _paid_order(client, customer_headers, new_order)
    few = [await _statements(runtime, client, path) for path in paths]
    for _ in range(4):
        await _paid_order(client, customer_headers, new_order)
    many = [await _statements(runtime, client, path) for path in paths]
    assert many == few
