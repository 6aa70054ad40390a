"""The admin lists vouchers, shipping zones, methods and tax rates, and shows an order's
breakdown (discount, shipping, tax, total), read-only."""

from __future__ import annotations

import httpx

from shopkeeper.core.runtime import Runtime
from tests.shop.admin.test_admin import STAFF_PASSWORD, admin_login, make_staff
from tests.shop.promotions.test_shipping_and_tax import weighted_sku, zone
from tests.shop.promotions.test_vouchers import apply, make_voucher, usd
from tests.support.shop import checkout, create_cart


async def test_admin_shows_vouchers_zones_rates_and_the_order_breakdown(
    client: httpx.AsyncClient,
    runtime: Runtime,
    staff_headers: dict[str, str],
    customer_headers: dict[str, str],
) -> None:
    await client.put("/api/v1/tax-rates/GB", headers=staff_headers, json={"rate_bps": 1_000})
    (method,) = await zone(
        client, staff_headers, ["GB"], {"name": "Parcel Post", "price": usd(700)}
    )
    sku = await weighted_sku(client, staff_headers, price=2_000, grams=0)
    await make_voucher(client, staff_headers, code="ADMIN5", kind="fixed", value=500)
    cart_id = await create_cart(client, customer_headers, [(sku, 1)])
    await apply(client, customer_headers, cart_id, "ADMIN5")
    order = (
        await checkout(client, customer_headers, cart_id, shipping_method_id=method["id"])
    ).json()

    await admin_login(client, await make_staff(runtime), STAFF_PASSWORD)
    assert "ADMIN5" in (await client.get("/admin/voucher/list")).text
    assert "Parcel Post" in (await client.get("/admin/shipping-method/list")).text
    assert "GB" in (await client.get("/admin/tax-rate/list")).text
    assert (await client.get("/admin/shipping-zone/list")).status_code == 200
    details = await client.get(f"/admin/order/details/{order['id']}")
    assert details.status_code == 200
    for amount in ("20.00 USD", "5.00 USD", "7.00 USD", "2.20 USD", "24.20 USD"):
        assert amount in details.text, amount
    assert (await client.get("/admin/voucher/create")).status_code == 403
