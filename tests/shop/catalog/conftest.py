"""Catalog fixtures: products created over HTTP the way staff create them."""

from __future__ import annotations

import secrets
from typing import Any

import httpx


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
