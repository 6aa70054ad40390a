"""`SHOPKEEPER_PRICES_INCLUDE_TAX=true`: the tax is the share the prices already hold."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from shopkeeper.core.settings import Settings
from tests.shop.promotions.test_shipping_and_tax import weighted_sku
from tests.shop.promotions.test_vouchers import usd
from tests.support.shop import checkout, create_cart


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory(prices_include_tax=True, shipping_flat_rate=0)


async def test_included_tax_is_shown_and_not_added(
    client: httpx.AsyncClient, staff_headers: dict[str, str], customer_headers: dict[str, str]
) -> None:
    await client.put("/api/v1/tax-rates/GB", headers=staff_headers, json={"rate_bps": 2_000})
    sku = await weighted_sku(client, staff_headers, price=1_200, grams=0)
    cart_id = await create_cart(client, customer_headers, [(sku, 1)])
    order = (await checkout(client, customer_headers, cart_id)).json()
    assert order["total"] == usd(1_200)
    assert order["tax"] == usd(200)  # 1200 * 2000 / 12000
    assert (
        order["total"]["amount"]
        == order["subtotal"]["amount"] - order["discount"]["amount"] + order["shipping"]["amount"]
    )
