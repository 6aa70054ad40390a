"""Issue 18 item 1: attributes too deep or too large to serve are refused at the door, so a
staff write can never take the public catalog down."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from shopkeeper.shop.catalog.schemas import ATTRIBUTES_MAX_BYTES, ATTRIBUTES_MAX_DEPTH
from tests.support.shop import product_body


def nested(depth: int) -> dict[str, Any]:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"k": value}
    return value  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "attributes",
    [
        nested(300),  # the probe's: 500 and a committed product that broke every listing
        nested(ATTRIBUTES_MAX_DEPTH + 1),
        {"k": [[[[["deep"]]]]]},
        {"blob": "x" * (ATTRIBUTES_MAX_BYTES + 1)},
        {"big": -807701490919754825728},  # found by the schemathesis run: past 64 bits
    ],
)
async def test_unservable_attributes_are_refused_and_not_stored(
    client: httpx.AsyncClient, staff_headers: dict[str, str], attributes: dict[str, Any]
) -> None:
    body = product_body("Deep", attributes=attributes)
    response = await client.post("/api/v1/products", json=body, headers=staff_headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    variant = product_body("Deep variant", variant_attributes=[attributes])
    response = await client.post("/api/v1/products", json=variant, headers=staff_headers)
    assert response.status_code == 422, response.text
    listing = await client.get("/api/v1/products")
    assert listing.status_code == 200
    assert listing.json()["items"] == []


async def test_attributes_within_bounds_round_trip(
    client: httpx.AsyncClient, staff_headers: dict[str, str]
) -> None:
    attributes = nested(ATTRIBUTES_MAX_DEPTH)
    body = product_body("Shallow", attributes=attributes)
    created = await client.post("/api/v1/products", json=body, headers=staff_headers)
    assert created.status_code == 201, created.text
    patched = await client.patch(
        f"/api/v1/products/{created.json()['id']}",
        json={"attributes": nested(ATTRIBUTES_MAX_DEPTH + 1)},
        headers=staff_headers,
    )
    assert patched.status_code == 422, patched.text
    listing = await client.get("/api/v1/products")
    assert listing.json()["items"][0]["attributes"] == attributes


async def test_any_json_body_nested_past_the_door_limit_is_422(client: httpx.AsyncClient) -> None:
    content = b'{"email": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    response = await client.post(
        "/api/v1/auth/register", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
