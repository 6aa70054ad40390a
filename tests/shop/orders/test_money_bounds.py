"""Issue 18 items 3, 5 and 12 (integer-valued floats): money is never negative, every money
column holds the documented bounds on PostgreSQL, and no integer input reaches SQL unbounded."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from shopkeeper.core.money import MAX_AMOUNT, MAX_PRICE, AmountOutOfRange, Money
from tests.support.shop import checkout, create_cart, create_sku, problem_slug


def variant_body(amount: Any) -> dict[str, Any]:
    return {
        "name": "Bounded",
        "variants": [
            {"sku": f"B-{uuid.uuid4().hex[:8]}", "price": {"amount": amount, "currency": "USD"}}
        ],
    }


@pytest.mark.parametrize("amount", [-1000, -1, MAX_PRICE + 1, 2**63, 2**64, 10**30, 12.5, "100"])
async def test_price_out_of_bounds_is_422(
    client: httpx.AsyncClient, staff_headers: dict[str, str], amount: Any
) -> None:
    response = await client.post(
        "/api/v1/products", json=variant_body(amount), headers=staff_headers
    )
    assert response.status_code == 422, response.text
    assert problem_slug(response) == "validation-error"


async def test_prices_past_32_bits_are_stored_and_sold(
    client: httpx.AsyncClient, staff_headers: dict[str, str], customer_headers: dict[str, str]
) -> None:
    top = await client.post("/api/v1/products", json=variant_body(MAX_PRICE), headers=staff_headers)
    assert top.status_code == 201, top.text
    sku = await create_sku(client, staff_headers, price=2**31 - 1, on_hand=10)
    found = await client.get(
        "/api/v1/products", params={"min_price": 2**31, "max_price": MAX_PRICE}
    )
    assert found.status_code == 200, found.text
    assert [item["variants"][0]["price"]["amount"] for item in found.json()["items"]] == [MAX_PRICE]
    # Two units pass 2^31-1: the order total and its payment need BIGINT.
    cart_id = await create_cart(client, customer_headers, [(sku, 2)])
    placed = await checkout(client, customer_headers, cart_id)
    assert placed.status_code == 201, placed.text
    assert placed.json()["total"]["amount"] >= 2 * (2**31 - 1)
    paid = await client.post(
        f"/api/v1/orders/{placed.json()['id']}/payments",
        json={"provider": "sandbox"},
        headers={**customer_headers, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert paid.status_code == 201, paid.text


@pytest.mark.parametrize("params", [{"min_price": 2**63}, {"max_price": 2**64}, {"min_price": -1}])
async def test_price_filters_are_bounded(client: httpx.AsyncClient, params: dict[str, int]) -> None:
    response = await client.get("/api/v1/products", params=params)
    assert response.status_code == 422, response.text


@pytest.mark.parametrize("amount", [0, -5, 2**64, MAX_AMOUNT + 1])
async def test_refund_amount_is_bounded(
    client: httpx.AsyncClient, staff_headers: dict[str, str], amount: int
) -> None:
    response = await client.post(
        f"/api/v1/payments/{uuid.uuid4()}/refunds",
        json={"amount": amount},
        headers={**staff_headers, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 422, response.text


async def test_integer_valued_float_is_an_integer(
    client: httpx.AsyncClient, staff_headers: dict[str, str], customer_headers: dict[str, str]
) -> None:
    """JSON Schema's `integer` includes 35.0; the document says integer, so 35.0 is accepted
    (and 35.5, "35" and true are not)."""
    sku = await create_sku(client, staff_headers, on_hand=100)
    cart = await client.post("/api/v1/carts", headers=customer_headers)
    items = f"/api/v1/carts/{cart.json()['id']}/items"
    for bad in (35.5, "35", True):
        refused = await client.post(
            items, json={"sku": sku, "quantity": bad}, headers=customer_headers
        )
        assert refused.status_code == 422, (bad, refused.text)
    added = await client.post(items, json={"sku": sku, "quantity": 35.0}, headers=customer_headers)
    assert added.status_code == 200, added.text
    assert added.json()["items"][0]["quantity"] == 35


def test_money_arithmetic_never_leaves_the_range() -> None:
    price = Money(amount=100, currency="USD")
    with pytest.raises(AmountOutOfRange):
        price - Money(amount=101, currency="USD")
    with pytest.raises(AmountOutOfRange):
        Money(amount=MAX_AMOUNT, currency="USD") + price
    with pytest.raises(AmountOutOfRange):
        price * -1
    assert (price * 3).amount == 300


def _integers(
    schema: dict[str, Any], components: dict[str, Any], seen: set[str]
) -> list[dict[str, Any]]:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            return []
        seen.add(name)
        return _integers(components[name], components, seen)
    found = [schema] if schema.get("type") == "integer" else []
    for key in ("anyOf", "oneOf", "allOf"):
        for option in schema.get(key, []):
            found += _integers(option, components, seen)
    for value in schema.get("properties", {}).values():
        found += _integers(value, components, seen)
    if "items" in schema:
        found += _integers(schema["items"], components, seen)
    return found


async def test_every_integer_input_in_the_document_is_bounded(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    components = document["components"]["schemas"]
    unbounded = []
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            schemas = [p["schema"] for p in operation.get("parameters", [])]
            for media in operation.get("requestBody", {}).get("content", {}).values():
                schemas.append(media["schema"])
            for schema in schemas:
                for integer in _integers(schema, components, set()):
                    if "maximum" not in integer or "minimum" not in integer:
                        unbounded.append(f"{method.upper()} {path}: {integer}")
    assert unbounded == []
