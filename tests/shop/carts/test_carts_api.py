"""Carts over HTTP: guests and users, owner-only access, limits, pricing at read time, merge at
sign-in, and clear problems for bad input."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

import httpx
import pytest

from shopkeeper.core.runtime import Runtime
from shopkeeper.core.security import Principal, decode_access_token
from shopkeeper.shop.carts import service as carts_service
from tests.conftest import login

API = "/api/v1"


@pytest.fixture
async def shop(client: httpx.AsyncClient, staff_headers: dict[str, str]) -> dict[str, Any]:
    """Two products over HTTP: a mug (two SKUs) and a poster; 10 of each SKU in stock."""
    mug = await client.post(
        f"{API}/products",
        json={
            "name": "Mug",
            "variants": [
                {"sku": "MUG-RED", "name": "Red", "price": {"amount": 1250, "currency": "USD"}},
                {"sku": "MUG-BLUE", "name": "Blue", "price": {"amount": 1300, "currency": "USD"}},
            ],
        },
        headers=staff_headers,
    )
    assert mug.status_code == 201, mug.text
    poster = await client.post(
        f"{API}/products",
        json={
            "name": "Poster",
            "variants": [{"sku": "POSTER", "price": {"amount": 999, "currency": "USD"}}],
        },
        headers=staff_headers,
    )
    assert poster.status_code == 201, poster.text
    await client.post(
        f"{API}/warehouses", json={"code": "W1", "name": "Main"}, headers=staff_headers
    )
    for sku in ("MUG-RED", "MUG-BLUE", "POSTER"):
        put = await client.put(f"{API}/stock/{sku}/W1", json={"on_hand": 10}, headers=staff_headers)
        assert put.status_code == 200, put.text
    return {"mug": mug.json(), "poster": poster.json(), "staff": staff_headers}


def _lines(cart: dict[str, Any]) -> list[tuple[str, int]]:
    return [(item["sku"], item["quantity"]) for item in cart["items"]]


async def _guest_cart(client: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    created = await client.post(f"{API}/carts")
    assert created.status_code == 201, created.text
    return created.json()["id"], {"X-Cart-Token": created.headers["X-Cart-Token"]}


async def test_guest_fills_a_cart_priced_from_the_catalog(
    client: httpx.AsyncClient, shop: dict[str, Any]
) -> None:
    created = await client.post(f"{API}/carts")
    assert created.status_code == 201
    assert len(created.headers["X-Cart-Token"]) >= 32
    assert created.json()["items"] == []
    assert created.json()["subtotal"] == {"amount": 0, "currency": "USD"}
    cart_id, token = created.json()["id"], {"X-Cart-Token": created.headers["X-Cart-Token"]}

    added = await client.post(
        f"{API}/carts/{cart_id}/items", json={"sku": "MUG-RED", "quantity": 2}, headers=token
    )
    assert added.status_code == 200, added.text
    again = await client.post(
        f"{API}/carts/{cart_id}/items", json={"sku": "MUG-RED", "quantity": 1}, headers=token
    )
    await client.post(
        f"{API}/carts/{cart_id}/items", json={"sku": "POSTER", "quantity": 1}, headers=token
    )
    cart = (await client.get(f"{API}/carts/{cart_id}", headers=token)).json()
    assert again.json()["items"][0]["quantity"] == 3
    assert cart["id"] == cart_id
    assert cart["items"][0] == {
        "sku": "MUG-RED",
        "product_id": shop["mug"]["id"],
        "name": "Mug (Red)",
        "quantity": 3,
        "unit_price": {"amount": 1250, "currency": "USD"},
        "total": {"amount": 3750, "currency": "USD"},
        "archived": False,
        "available": 10,
    }
    assert _lines(cart) == [("MUG-RED", 3), ("POSTER", 1)]
    assert cart["subtotal"] == {"amount": 3750 + 999, "currency": "USD"}

    patched = await client.patch(
        f"{API}/carts/{cart_id}/items/MUG-RED", json={"quantity": 5}, headers=token
    )
    assert _lines(patched.json()) == [("MUG-RED", 5), ("POSTER", 1)]
    zeroed = await client.patch(
        f"{API}/carts/{cart_id}/items/POSTER", json={"quantity": 0}, headers=token
    )
    assert _lines(zeroed.json()) == [("MUG-RED", 5)]
    deleted = await client.delete(f"{API}/carts/{cart_id}/items/MUG-RED", headers=token)
    assert deleted.status_code == 200
    assert deleted.json()["items"] == []
    assert deleted.json()["subtotal"]["amount"] == 0


async def test_names_come_from_the_catalog_when_the_cart_is_read(
    client: httpx.AsyncClient, shop: dict[str, Any]
) -> None:
    cart_id, token = await _guest_cart(client)
    await client.post(
        f"{API}/carts/{cart_id}/items", json={"sku": "POSTER", "quantity": 1}, headers=token
    )
    renamed = await client.patch(
        f"{API}/products/{shop['poster']['id']}", json={"name": "Big poster"}, headers=shop["staff"]
    )
    assert renamed.status_code == 200, renamed.text
    cart = (await client.get(f"{API}/carts/{cart_id}", headers=token)).json()
    assert cart["items"][0]["name"] == "Big poster"


async def test_a_guest_cart_needs_its_token(
    client: httpx.AsyncClient, shop: dict[str, Any], customer_headers: dict[str, str]
) -> None:
    cart_id, _token = await _guest_cart(client)
    for headers in ({}, {"X-Cart-Token": secrets.token_urlsafe(32)}, customer_headers):
        read = await client.get(f"{API}/carts/{cart_id}", headers=headers)
        assert read.status_code == 404, (headers, read.text)
        assert read.json()["type"].endswith("/cart-not-found")
        write = await client.post(
            f"{API}/carts/{cart_id}/items", json={"sku": "POSTER", "quantity": 1}, headers=headers
        )
        assert write.status_code == 404


async def test_a_user_has_one_open_cart_and_nobody_else_sees_it(
    client: httpx.AsyncClient, shop: dict[str, Any]
) -> None:
    alice = await _register(client, "alice")
    bob = await _register(client, "bob")
    first = await client.post(f"{API}/carts", headers=alice)
    second = await client.post(f"{API}/carts", headers=alice)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    assert "X-Cart-Token" not in first.headers
    cart_id = first.json()["id"]
    await client.post(
        f"{API}/carts/{cart_id}/items", json={"sku": "POSTER", "quantity": 2}, headers=alice
    )

    assert (await client.get(f"{API}/carts/{cart_id}", headers=bob)).status_code == 404
    calls = [
        client.post(
            f"{API}/carts/{cart_id}/items", json={"sku": "POSTER", "quantity": 1}, headers=bob
        ),
        client.patch(f"{API}/carts/{cart_id}/items/POSTER", json={"quantity": 1}, headers=bob),
        client.delete(f"{API}/carts/{cart_id}/items/POSTER", headers=bob),
        client.get(f"{API}/carts/{cart_id}", headers=shop["staff"]),
    ]
    for call in calls:
        assert (await call).status_code == 404
    cart = (await client.get(f"{API}/carts/{cart_id}", headers=alice)).json()
    assert _lines(cart) == [("POSTER", 2)]


async def test_bad_cart_input_is_a_clear_problem_and_changes_nothing(
    client: httpx.AsyncClient, shop: dict[str, Any]
) -> None:
    cart_id, token = await _guest_cart(client)
    items = f"{API}/carts/{cart_id}/items"
    await client.post(items, json={"sku": "MUG-BLUE", "quantity": 4}, headers=token)
    cases: list[tuple[str, str, Any, int, str]] = [
        ("POST", items, {"sku": "NOPE", "quantity": 1}, 404, "sku-not-found"),
        ("POST", items, {"sku": "MUG-BLUE", "quantity": 7}, 409, "insufficient-stock"),
        ("POST", items, {"sku": "POSTER", "quantity": 11}, 409, "insufficient-stock"),
        ("POST", items, {"sku": "POSTER", "quantity": 0}, 422, "validation-error"),
        ("POST", items, {"sku": "POSTER", "quantity": 101}, 422, "validation-error"),
        ("POST", items, {"sku": "POSTER", "quantity": "2"}, 422, "validation-error"),
        ("POST", items, {"sku": "POSTER"}, 422, "validation-error"),
        ("POST", items, {"sku": "POSTER", "quantity": 1, "price": 1}, 422, "validation-error"),
        ("PATCH", f"{items}/MUG-BLUE", {"quantity": -1}, 422, "validation-error"),
        ("PATCH", f"{items}/MUG-BLUE", {"quantity": 11}, 409, "insufficient-stock"),
        ("PATCH", f"{items}/POSTER", {"quantity": 1}, 404, "cart-item-not-found"),
        ("DELETE", f"{items}/POSTER", None, 404, "cart-item-not-found"),
        ("GET", f"{API}/carts/not-a-uuid", None, 422, "validation-error"),
    ]
    for method, url, body, status, slug in cases:
        response = await client.request(method, url, json=body, headers=token)
        assert response.status_code == status, (method, url, body, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"].endswith("/" + slug)
    short = await client.post(items, json={"sku": "MUG-BLUE", "quantity": 7}, headers=token)
    assert short.json()["sku"] == "MUG-BLUE"
    cart = (await client.get(f"{API}/carts/{cart_id}", headers=token)).json()
    assert _lines(cart) == [("MUG-BLUE", 4)]


async def test_a_line_is_capped_at_one_hundred(
    client: httpx.AsyncClient, shop: dict[str, Any]
) -> None:
    await client.put(f"{API}/stock/POSTER/W1", json={"on_hand": 500}, headers=shop["staff"])
    cart_id, token = await _guest_cart(client)
    items = f"{API}/carts/{cart_id}/items"
    assert (
        await client.post(items, json={"sku": "POSTER", "quantity": 60}, headers=token)
    ).status_code == 200
    over = await client.post(items, json={"sku": "POSTER", "quantity": 41}, headers=token)
    assert over.status_code == 422
    assert over.json()["type"].endswith("/quantity-limit")
    full = await client.post(items, json={"sku": "POSTER", "quantity": 40}, headers=token)
    assert _lines(full.json()) == [("POSTER", 100)]


async def test_archived_products_are_flagged_and_refused_at_checkout(
    client: httpx.AsyncClient, runtime: Runtime, shop: dict[str, Any]
) -> None:
    cart_id, token = await _guest_cart(client)
    items = f"{API}/carts/{cart_id}/items"
    await client.post(items, json={"sku": "POSTER", "quantity": 2}, headers=token)
    await client.post(items, json={"sku": "MUG-RED", "quantity": 1}, headers=token)
    archived = await client.delete(f"{API}/products/{shop['poster']['id']}", headers=shop["staff"])
    assert archived.status_code == 204

    cart = (await client.get(f"{API}/carts/{cart_id}", headers=token)).json()
    assert [(item["sku"], item["archived"]) for item in cart["items"]] == [
        ("POSTER", True),
        ("MUG-RED", False),
    ]
    assert cart["subtotal"]["amount"] == 1250
    refused = await client.post(items, json={"sku": "POSTER", "quantity": 1}, headers=token)
    assert refused.status_code == 409
    assert refused.json()["type"].endswith("/item-unavailable")

    async with runtime.db.session() as session:
        with pytest.raises(carts_service.ItemUnavailable) as raised:
            await carts_service.checkout_snapshot(
                session,
                cart_id=uuid.UUID(cart_id),
                principal=None,
                cart_token=token["X-Cart-Token"],
            )
    assert raised.value.extensions == {"sku": "POSTER"}
    await client.delete(f"{items}/POSTER", headers=token)
    async with runtime.db.session() as session:
        snapshot = await carts_service.checkout_snapshot(
            session, cart_id=uuid.UUID(cart_id), principal=None, cart_token=token["X-Cart-Token"]
        )
    assert [(line.sku, line.quantity) for line in snapshot.lines] == [("MUG-RED", 1)]


async def test_signing_in_merges_the_guest_cart_into_the_users_cart(
    client: httpx.AsyncClient, shop: dict[str, Any]
) -> None:
    await client.put(f"{API}/stock/POSTER/W1", json={"on_hand": 500}, headers=shop["staff"])
    email, password = f"merge-{secrets.token_hex(3)}@example.com", "correct-horse-1"
    user = await _register(client, email=email, password=password)
    user_cart = (await client.post(f"{API}/carts", headers=user)).json()["id"]
    await client.post(
        f"{API}/carts/{user_cart}/items", json={"sku": "POSTER", "quantity": 30}, headers=user
    )
    await client.post(
        f"{API}/carts/{user_cart}/items", json={"sku": "MUG-BLUE", "quantity": 1}, headers=user
    )

    guest_cart, token = await _guest_cart(client)
    await client.post(
        f"{API}/carts/{guest_cart}/items", json={"sku": "POSTER", "quantity": 90}, headers=token
    )
    await client.post(
        f"{API}/carts/{guest_cart}/items", json={"sku": "MUG-RED", "quantity": 2}, headers=token
    )

    signed_in = await client.post(
        f"{API}/auth/token", data={"username": email, "password": password}, headers=token
    )
    assert signed_in.status_code == 200, signed_in.text
    headers = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}
    merged = (await client.get(f"{API}/carts/{user_cart}", headers=headers)).json()
    assert sorted(_lines(merged)) == [("MUG-BLUE", 1), ("MUG-RED", 2), ("POSTER", 100)]

    guest = await client.get(f"{API}/carts/{guest_cart}", headers=token)
    assert guest.json()["status"] == "merged"
    closed = await client.post(
        f"{API}/carts/{guest_cart}/items", json={"sku": "MUG-RED", "quantity": 1}, headers=token
    )
    assert closed.status_code == 409
    assert closed.json()["type"].endswith("/cart-closed")

    # Signing in again with the spent token changes nothing.
    await client.post(
        f"{API}/auth/token", data={"username": email, "password": password}, headers=token
    )
    again = (await client.get(f"{API}/carts/{user_cart}", headers=headers)).json()
    assert sorted(_lines(again)) == [("MUG-BLUE", 1), ("MUG-RED", 2), ("POSTER", 100)]


async def test_a_user_without_a_cart_adopts_the_guest_cart_at_sign_in(
    client: httpx.AsyncClient, runtime: Runtime, shop: dict[str, Any]
) -> None:
    email, password = f"adopt-{secrets.token_hex(3)}@example.com", "correct-horse-1"
    await _register(client, email=email, password=password)
    guest_cart, token = await _guest_cart(client)
    await client.post(
        f"{API}/carts/{guest_cart}/items", json={"sku": "MUG-RED", "quantity": 2}, headers=token
    )

    signed_in = await client.post(
        f"{API}/auth/token", data={"username": email, "password": password}, headers=token
    )
    headers = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}
    mine = await client.post(f"{API}/carts", headers=headers)
    assert mine.status_code == 200
    assert mine.json()["id"] == guest_cart
    assert _lines(mine.json()) == [("MUG-RED", 2)]
    # The guest token no longer opens what is now an account's cart.
    assert (await client.get(f"{API}/carts/{guest_cart}", headers=token)).status_code == 404
    principal: Principal = decode_access_token(signed_in.json()["access_token"], runtime.settings)
    assert principal.is_staff is False


async def test_an_unknown_cart_token_at_sign_in_is_ignored(
    client: httpx.AsyncClient, shop: dict[str, Any]
) -> None:
    email, password = f"nocart-{secrets.token_hex(3)}@example.com", "correct-horse-1"
    await _register(client, email=email, password=password)
    signed_in = await client.post(
        f"{API}/auth/token",
        data={"username": email, "password": password},
        headers={"X-Cart-Token": "not-a-real-token"},
    )
    assert signed_in.status_code == 200


async def _register(
    client: httpx.AsyncClient,
    name: str | None = None,
    *,
    email: str | None = None,
    password: str = "correct-horse-1",
) -> dict[str, str]:
    email = email or f"{name}-{secrets.token_hex(3)}@example.com"
    registered = await client.post(
        f"{API}/auth/register", json={"email": email, "password": password}
    )
    assert registered.status_code == 201, registered.text
    return await login(client, email, password)
