"""An order whose total is zero (a voucher took everything, shipping is free) is paid at once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from shopkeeper.core.settings import Settings
from tests.shop.promotions.test_vouchers import apply, assert_totals, make_voucher
from tests.support.shop import checkout, create_cart, create_sku, problem_slug


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory(shipping_flat_rate=0)


async def test_a_zero_total_order_is_paid_at_once(
    client: httpx.AsyncClient, staff_headers: dict[str, str], customer_headers: dict[str, str]
) -> None:
    sku = await create_sku(client, staff_headers, price=1_500)
    voucher = await make_voucher(client, staff_headers, kind="percentage", value=10_000)
    cart_id = await create_cart(client, customer_headers, [(sku, 2)])
    assert (await apply(client, customer_headers, cart_id, voucher["code"])).status_code == 200
    response = await checkout(client, customer_headers, cart_id)
    assert response.status_code == 201, response.text
    order: dict[str, Any] = response.json()
    assert order["total"]["amount"] == 0 and order["discount"]["amount"] == 3_000
    assert order["status"] == "paid" and order["paid_at"] is not None
    assert_totals(order)
    transitions = await client.get(
        f"/api/v1/orders/{order['id']}/transitions", headers=customer_headers
    )
    assert [t["to_status"] for t in transitions.json()] == ["pending_payment", "paid"]
    payment = await client.post(
        f"/api/v1/orders/{order['id']}/payments",
        headers={**customer_headers, "Idempotency-Key": "zero-total"},
        json={"provider": "sandbox"},
    )
    assert payment.status_code == 409 and problem_slug(payment) == "order-not-payable"
