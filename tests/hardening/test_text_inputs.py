"""Issue 18 items 4 and 10: a NUL or a lone surrogate anywhere is a 422, never a 500; a webhook
carrying one is still recorded for audit."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from shopkeeper.core.runtime import Runtime
from shopkeeper.shop.payments.models import PaymentCallback
from tests.support.shop import product_body

PROBLEM = "application/problem+json"


def assert_refused(response: httpx.Response) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM


async def test_nul_in_every_kind_of_input_is_422(
    client: httpx.AsyncClient, staff_headers: dict[str, str]
) -> None:
    assert_refused(
        await client.post("/api/v1/auth/token", data={"username": "a\x00b", "password": "x"})
    )
    assert_refused(await client.get("/api/v1/products", params={"q": "shoe\x00"}))
    assert_refused(await client.get("/api/v1/products", params={"category": "\x00"}))
    assert_refused(await client.get("/api/v1/products/slug%00x"))
    assert_refused(
        await client.post(
            "/api/v1/auth/register",
            json={"email": "eve@example.com", "password": "long-enough-1", "full_name": "E\x00"},
        )
    )
    assert_refused(await client.post("/api/v1/carts/items", json={"sku": "A\u0000", "quantity": 1}))
    body = product_body("Nul")
    body["description"] = "a\u0000b"
    assert_refused(await client.post("/api/v1/products", json=body, headers=staff_headers))
    assert_refused(await client.get("/api/v1/products?q=%C0%AF"))  # overlong: not UTF-8


async def test_lone_surrogate_in_attributes_is_422(
    client: httpx.AsyncClient, staff_headers: dict[str, str]
) -> None:
    raw = product_body("Surrogate")
    raw["attributes"] = {"colour": "PLACEHOLDER"}
    content = httpx.Request("POST", "/", json=raw).content.replace(b"PLACEHOLDER", b"\\ud800")
    response = await client.post(
        "/api/v1/products",
        content=content,
        headers={**staff_headers, "Content-Type": "application/json"},
    )
    assert_refused(response)
    key = content.replace(b'"colour"', b'"\\udfff"').replace(b"\\ud800", b"red")
    assert_refused(
        await client.post(
            "/api/v1/products",
            content=key,
            headers={**staff_headers, "Content-Type": "application/json"},
        )
    )
    # A properly paired surrogate is an ordinary character.
    paired = content.replace(b"\\ud800", b"\\ud83d\\ude00")
    created = await client.post(
        "/api/v1/products",
        content=paired,
        headers={**staff_headers, "Content-Type": "application/json"},
    )
    assert created.status_code == 201, created.text
    assert created.json()["attributes"]["colour"] == "\U0001f600"
    assert (await client.get("/api/v1/products")).status_code == 200


async def test_non_utf8_body_is_422_not_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/auth/register",
        content=b'{"email": "\xff@example.com", "password": "long-enough-1"}',
        headers={"Content-Type": "application/json"},
    )
    assert_refused(response)


@pytest.mark.parametrize("body", [b'{"id": "evt\\u0000"}', b"id=evt%00&x=1"])
async def test_webhook_with_nul_is_refused_and_audited(
    client: httpx.AsyncClient, runtime: Runtime, body: bytes
) -> None:
    response = await client.post(
        "/api/v1/payments/webhooks/sandbox",
        content=body.replace(b"%00", b"\x00") if b"%" in body else body,
        headers={"Content-Type": "application/json"},
    )
    assert_refused(response)
    async with runtime.db.session() as session:
        rows = (await session.scalars(select(PaymentCallback))).all()
    assert [row.verified for row in rows] == [False]
    assert "invalid-characters" in rows[0].detail
