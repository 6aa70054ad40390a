"""Shared test set-up for the shop: users and their tokens, products, stock, carts, orders and
payments, made the way a client or staff member would make them. One meaning per name."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from sqlalchemy import insert

from shopkeeper.accounts.models import User, UserRole
from shopkeeper.accounts.roles import ROLES
from shopkeeper.core.db import new_id, utcnow
from shopkeeper.core.runtime import Runtime
from shopkeeper.core.security import create_access_token, hash_password
from shopkeeper.shop.catalog import service as catalog_service
from shopkeeper.shop.catalog.schemas import ProductIn

ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "12 St James's Square",
    "city": "London",
    "postal_code": "SW1Y 4JH",
    "country": "GB",
}


# Hashed once: argon2 per test user would spend the suite's time on password hashing. Sign-in
# itself is tested in tests/users; here users are inserted and given the tokens login would give.
_PASSWORD_HASH = hash_password("orders-tests-password")


async def make_users(runtime: Runtime, count: int, *, staff: bool = False) -> list[dict[str, str]]:
    """`count` users inserted in one statement, each as `Authorization` headers."""
    rows = [
        {
            "id": new_id(),
            "email": f"{'staff' if staff else 'user'}-{secrets.token_hex(5)}@example.com",
            "password_hash": _PASSWORD_HASH,
            "full_name": None,
            "is_staff": staff,
            "is_active": True,
            "created_at": utcnow(),
        }
        for _ in range(count)
    ]
    async with runtime.db.session() as session:
        await session.execute(insert(User), rows)
        if staff:
            await session.execute(
                insert(UserRole), [{"user_id": row["id"], "role": "admin"} for row in rows]
            )
        await session.commit()
    permissions = ROLES["admin"] if staff else frozenset()
    return [
        {
            "Authorization": "Bearer "
            + create_access_token(
                settings=runtime.settings, user_id=row["id"], permissions=permissions
            )
        }
        for row in rows
    ]


async def make_user(runtime: Runtime, *, staff: bool = False) -> dict[str, str]:
    [headers] = await make_users(runtime, 1, staff=staff)
    return headers


PlaceOrder = Callable[..., Awaitable[dict[str, Any]]]


def problem_slug(response: httpx.Response) -> str:
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    return str(response.json()["type"]).rsplit("/", 1)[-1]


async def create_sku(
    client: httpx.AsyncClient,
    staff: dict[str, str],
    *,
    sku: str | None = None,
    price: int = 1_000,
    on_hand: int = 50,
    warehouse: str | None = None,
) -> str:
    """A product with one variant and `on_hand` units in a warehouse, made through the API."""
    sku = sku or f"SKU-{secrets.token_hex(4).upper()}"
    product = await client.post(
        "/api/v1/products",
        headers=staff,
        json={
            "name": f"Product {sku}",
            "variants": [{"sku": sku, "price": {"amount": price, "currency": "USD"}}],
        },
    )
    assert product.status_code == 201, product.text
    code = warehouse or f"WH{secrets.token_hex(3).upper()}"
    made = await client.post(
        "/api/v1/warehouses", headers=staff, json={"code": code, "name": f"Warehouse {code}"}
    )
    assert made.status_code in (201, 409), made.text
    stock = await client.put(
        f"/api/v1/stock/{sku}/{code}", headers=staff, json={"on_hand": on_hand}
    )
    assert stock.status_code == 200, stock.text
    return sku


async def create_cart(
    client: httpx.AsyncClient, headers: dict[str, str], items: list[tuple[str, int]]
) -> str:
    cart = await client.post("/api/v1/carts", headers=headers)
    assert cart.status_code in (200, 201), cart.text
    cart_id = str(cart.json()["id"])
    token = cart.headers.get("X-Cart-Token")
    item_headers = {**headers, "X-Cart-Token": token} if token else headers
    for sku, quantity in items:
        added = await client.post(
            f"/api/v1/carts/{cart_id}/items",
            headers=item_headers,
            json={"sku": sku, "quantity": quantity},
        )
        assert added.status_code == 200, added.text
    return cart_id


async def checkout(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    cart_id: str,
    *,
    key: str | None = None,
    **body: Any,
) -> httpx.Response:
    return await client.post(
        "/api/v1/orders",
        headers={**headers, "Idempotency-Key": key or str(uuid.uuid4())},
        json={"cart_id": cart_id, "shipping_address": ADDRESS, **body},
    )


async def stock_of(client: httpx.AsyncClient, staff: dict[str, str], sku: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/stock/{sku}", headers=staff)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def product_body(
    name: str,
    *,
    price: int = 1000,
    skus: int = 1,
    description: str = "",
    category_id: str | None = None,
    attributes: dict[str, Any] | None = None,
    variant_attributes: list[dict[str, Any]] | None = None,
    currency: str = "USD",
) -> dict[str, Any]:
    token = secrets.token_hex(4)
    variants = [
        {
            "sku": f"SKU-{token}-{index}",
            "price": {"amount": price + index * 100, "currency": currency},
            "attributes": (variant_attributes or [{}] * skus)[index],
        }
        for index in range(skus)
    ]
    body: dict[str, Any] = {
        "name": name,
        "description": description,
        "attributes": attributes or {},
        "variants": variants,
    }
    if category_id is not None:
        body["category_id"] = category_id
    return body


async def create_product(
    client: httpx.AsyncClient, headers: dict[str, str], name: str, **options: Any
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/products", json=product_body(name, **options), headers=headers
    )
    assert response.status_code == 201, response.text
    product: dict[str, Any] = response.json()
    return product


async def create_category(
    client: httpx.AsyncClient, headers: dict[str, str], name: str, parent_id: str | None = None
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/categories", json={"name": name, "parent_id": parent_id}, headers=headers
    )
    assert response.status_code == 201, response.text
    category: dict[str, Any] = response.json()
    return category


async def insert_product(
    runtime: Runtime, *skus: str, price: int = 1000, name: str | None = None
) -> uuid.UUID:
    """A catalog product with one variant per SKU, all at `price` minor units."""
    body = ProductIn.model_validate(
        {
            "name": name or f"Product {secrets.token_hex(3)}",
            "variants": [
                {"sku": sku, "price": {"amount": price, "currency": runtime.settings.currency}}
                for sku in skus
            ],
        }
    )
    async with runtime.db.session() as session:
        product = await catalog_service.create_product(
            session, cache=runtime.cache, currency=runtime.settings.currency, body=body
        )
    return uuid.UUID(str(product["id"]))


StockFactory = Callable[..., Awaitable[None]]


SANDBOX_SECRET = "sandbox-test-secret"


OrderFactory = Callable[..., Any]


async def start_payment(
    client: httpx.AsyncClient, headers: dict[str, str], order_id: str, provider: str
) -> dict[str, Any]:
    import uuid

    response = await client.post(
        f"/api/v1/orders/{order_id}/payments",
        headers={**headers, "Idempotency-Key": str(uuid.uuid4())},
        json={"provider": provider},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def order_status(client: httpx.AsyncClient, headers: dict[str, str], order_id: str) -> str:
    response = await client.get(f"/api/v1/orders/{order_id}", headers=headers)
    assert response.status_code == 200, response.text
    return str(response.json()["status"])


async def payment_of(
    client: httpx.AsyncClient, headers: dict[str, str], payment_id: str
) -> dict[str, Any]:
    response = await client.get(f"/api/v1/payments/{payment_id}", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body
