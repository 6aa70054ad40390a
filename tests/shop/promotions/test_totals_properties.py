"""Property tests: for generated carts and vouchers, an order's totals add up, nothing is
negative, the discount never exceeds what it applies to, and the payment charges the total."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shopkeeper.shop.promotions.pricing import (
    fixed_discount,
    half_even_share,
    percentage_discount,
)
from tests.shop.promotions.test_vouchers import FLAT, apply, assert_totals, make_voucher
from tests.support.shop import checkout, create_cart, create_sku, start_payment

amounts = st.integers(min_value=0, max_value=10**12)


@given(amount=amounts, bps=st.integers(min_value=0, max_value=10_000))
def test_a_percentage_is_the_exact_share_rounded_half_even(amount: int, bps: int) -> None:
    discount = percentage_discount(amount, bps)
    assert 0 <= discount <= amount
    exact_twice = 2 * amount * bps  # twice the exact share, in 1/10000 units
    # within half a minor unit of the exact value
    assert abs(2 * discount * 10_000 - exact_twice) <= 10_000


@given(amount=amounts, value=amounts)
def test_a_fixed_discount_never_exceeds_its_base(amount: int, value: int) -> None:
    assert fixed_discount(amount, value) == min(amount, value)


def test_ties_go_to_the_even_neighbour() -> None:
    assert half_even_share(5, 1, 2) == 2  # 2.5 -> 2
    assert half_even_share(7, 1, 2) == 4  # 3.5 -> 4
    assert half_even_share(3015, 1250, 10_000) == 377  # 376.875


voucher_specs = st.one_of(
    st.tuples(st.just("percentage"), st.integers(min_value=1, max_value=10_000)),
    st.tuples(st.just("fixed"), st.integers(min_value=1, max_value=100_000)),
    st.tuples(st.just("free_shipping"), st.just(0)),
    st.none(),
)
lines = st.lists(
    st.tuples(st.integers(min_value=0, max_value=50_000), st.integers(min_value=1, max_value=5)),
    min_size=1,
    max_size=4,
)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(cart=lines, spec=voucher_specs)
async def test_generated_orders_add_up_and_charge_their_total(
    client: httpx.AsyncClient,
    staff_headers: dict[str, str],
    customer_headers: dict[str, str],
    cart: list[tuple[int, int]],
    spec: tuple[str, int] | None,
) -> None:
    items = [
        (await create_sku(client, staff_headers, price=price, warehouse="WHPROP"), quantity)
        for price, quantity in cart
    ]
    cart_id = await create_cart(client, customer_headers, items)
    subtotal = sum(price * quantity for price, quantity in cart)
    if spec is not None:
        kind, value = spec
        voucher = await make_voucher(
            client, staff_headers, code=f"P{secrets.token_hex(5)}", kind=kind, value=value
        )
        applied = await apply(client, customer_headers, cart_id, voucher["code"])
        assert applied.status_code == 200, applied.text
    response = await checkout(client, customer_headers, cart_id)
    assert response.status_code == 201, response.text
    order: dict[str, Any] = response.json()
    assert_totals(order)
    assert order["subtotal"]["amount"] == subtotal
    discount = order["discount"]["amount"]
    assert discount >= 0
    if spec is not None and spec[0] == "free_shipping":
        assert discount == FLAT
    else:
        assert discount <= subtotal
    for field in ("subtotal", "discount", "shipping", "tax", "total"):
        assert order[field]["amount"] >= 0
    if order["total"]["amount"] == 0:
        assert order["status"] == "paid"
    else:
        payment = await start_payment(client, customer_headers, order["id"], "sandbox")
        assert payment["amount"] == order["total"]


methods = st.tuples(
    st.integers(min_value=0, max_value=5_000),
    st.one_of(st.none(), st.integers(min_value=0, max_value=200_000)),
)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    cart=lines,
    spec=voucher_specs,
    method=methods,
    rate_bps=st.integers(min_value=0, max_value=3_000),
)
async def test_generated_orders_with_methods_and_tax_add_up(
    client: httpx.AsyncClient,
    staff_headers: dict[str, str],
    customer_headers: dict[str, str],
    cart: list[tuple[int, int]],
    spec: tuple[str, int] | None,
    method: tuple[int, int | None],
    rate_bps: int,
) -> None:
    from tests.shop.promotions.test_shipping_and_tax import zone
    from tests.shop.promotions.test_vouchers import usd

    price, free_over = method
    body: dict[str, Any] = {"name": "M", "price": usd(price)}
    if free_over is not None:
        body["free_over"] = usd(free_over)
    (made,) = await zone(client, staff_headers, ["GB"], body)
    rate = await client.put(
        "/api/v1/tax-rates/GB", headers=staff_headers, json={"rate_bps": rate_bps}
    )
    assert rate.status_code == 200, rate.text
    items = [
        (await create_sku(client, staff_headers, price=unit, warehouse="WHPROP"), quantity)
        for unit, quantity in cart
    ]
    cart_id = await create_cart(client, customer_headers, items)
    subtotal = sum(unit * quantity for unit, quantity in cart)
    if spec is not None:
        voucher = await make_voucher(
            client, staff_headers, code=f"Q{secrets.token_hex(5)}", kind=spec[0], value=spec[1]
        )
        assert (await apply(client, customer_headers, cart_id, voucher["code"])).status_code == 200
    response = await checkout(client, customer_headers, cart_id, shipping_method_id=made["id"])
    assert response.status_code == 201, response.text
    order: dict[str, Any] = response.json()
    assert_totals(order)
    discount, shipping = order["discount"]["amount"], order["shipping"]["amount"]
    goods_discount = 0 if spec is not None and spec[0] == "free_shipping" else discount
    expected_shipping = (
        0 if free_over is not None and subtotal - goods_discount >= free_over else price
    )
    assert shipping == expected_shipping
    if spec is not None and spec[0] == "free_shipping":
        assert discount == shipping
    else:
        assert 0 <= discount <= subtotal
    taxable = subtotal - discount + shipping
    assert order["tax"]["amount"] == half_even_share(taxable, rate_bps, 10_000)
    for field in ("subtotal", "discount", "shipping", "tax", "total"):
        assert order[field]["amount"] >= 0
    if order["total"]["amount"] == 0:
        assert order["status"] == "paid"
    else:
        payment = await start_payment(client, customer_headers, order["id"], "sandbox")
        assert payment["amount"] == order["total"]
