"""Warehouses and stock over HTTP: staff only, clear problems, nothing changed by bad input."""

from __future__ import annotations

import uuid

import httpx
import pytest

from shopkeeper.core.runtime import Runtime
from shopkeeper.shop.inventory import service
from tests.shop.inventory.conftest import create_product
from tests.support.events import drain_events

API = "/api/v1"


async def test_staff_sets_and_reads_stock_across_warehouses(
    client: httpx.AsyncClient, runtime: Runtime, staff_headers: dict[str, str]
) -> None:
    await create_product(runtime, "TEE-S")
    for code in ("PAR", "BER"):
        created = await client.post(
            f"{API}/warehouses",
            json={"code": code, "name": f"{code} depot", "latitude": 48.0, "longitude": 2.0},
            headers=staff_headers,
        )
        assert created.status_code == 201, created.text
        assert created.json()["code"] == code
    put = await client.put(f"{API}/stock/TEE-S/PAR", json={"on_hand": 7}, headers=staff_headers)
    assert put.status_code == 200, put.text
    assert put.json() == {
        "sku": "TEE-S",
        "warehouse": "PAR",
        "on_hand": 7,
        "reserved": 0,
        "available": 7,
    }
    await client.put(f"{API}/stock/TEE-S/BER", json={"on_hand": 3}, headers=staff_headers)
    await client.put(f"{API}/stock/TEE-S/BER", json={"on_hand": 4}, headers=staff_headers)

    stock = await client.get(f"{API}/stock/TEE-S", headers=staff_headers)
    assert stock.status_code == 200
    body = stock.json()
    assert (body["sku"], body["on_hand"], body["reserved"], body["available"]) == (
        "TEE-S",
        11,
        0,
        11,
    )
    assert [(level["warehouse"], level["on_hand"]) for level in body["warehouses"]] == [
        ("BER", 4),
        ("PAR", 7),
    ]


async def test_a_catalog_sku_without_stock_reads_as_zero(
    client: httpx.AsyncClient, runtime: Runtime, staff_headers: dict[str, str]
) -> None:
    await create_product(runtime, "NEW-1")
    stock = await client.get(f"{API}/stock/NEW-1", headers=staff_headers)
    assert stock.json() == {
        "sku": "NEW-1",
        "on_hand": 0,
        "reserved": 0,
        "available": 0,
        "low_stock_threshold": None,
        "warehouses": [],
    }


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/warehouses", {"code": "X", "name": "X"}),
        ("PUT", "/stock/ANY/X", {"on_hand": 1}),
        ("GET", "/stock/ANY", None),
        ("PUT", "/stock/ANY", {"low_stock_threshold": 3}),
    ],
)
async def test_stock_endpoints_are_for_staff_only(
    client: httpx.AsyncClient,
    customer_headers: dict[str, str],
    method: str,
    path: str,
    body: dict[str, object] | None,
) -> None:
    anonymous = await client.request(method, API + path, json=body)
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"
    customer = await client.request(method, API + path, json=body, headers=customer_headers)
    assert customer.status_code == 403
    assert customer.json()["type"].endswith("/permission-denied")


async def test_bad_stock_input_is_a_clear_problem_and_changes_nothing(
    client: httpx.AsyncClient, runtime: Runtime, staff_headers: dict[str, str]
) -> None:
    await create_product(runtime, "CAP-1")
    await client.post(
        f"{API}/warehouses", json={"code": "W1", "name": "One"}, headers=staff_headers
    )
    await client.put(f"{API}/stock/CAP-1/W1", json={"on_hand": 5}, headers=staff_headers)

    cases = [
        ("PUT", "/stock/CAP-1/W1", {"on_hand": -1}, 422, "validation-error"),
        ("PUT", "/stock/CAP-1/W1", {"on_hand": "9"}, 422, "validation-error"),
        ("PUT", "/stock/CAP-1/W1", {"on_hand": 1.5}, 422, "validation-error"),
        ("PUT", "/stock/CAP-1/W1", {}, 422, "validation-error"),
        ("PUT", "/stock/NOPE/W1", {"on_hand": 1}, 404, "unknown-sku"),
        ("PUT", "/stock/CAP-1/NOWHERE", {"on_hand": 1}, 404, "warehouse-not-found"),
        ("GET", "/stock/NOPE", None, 404, "unknown-sku"),
        ("POST", "/warehouses", {"code": "W1", "name": "Again"}, 409, "warehouse-code-taken"),
        (
            "POST",
            "/warehouses",
            {"code": "W2", "name": "N", "latitude": 91, "longitude": 0},
            422,
            "validation-error",
        ),
        (
            "POST",
            "/warehouses",
            {"code": "W2", "name": "N", "latitude": 10},
            422,
            "validation-error",
        ),
        ("POST", "/warehouses", {"code": "bad code", "name": "N"}, 422, "validation-error"),
        ("PUT", "/stock/CAP-1", {"low_stock_threshold": -1}, 422, "validation-error"),
        ("PUT", "/stock/CAP-1", {"low_stock_threshold": "4"}, 422, "validation-error"),
        ("PUT", "/stock/CAP-1", {}, 422, "validation-error"),
        ("PUT", "/stock/NOPE", {"low_stock_threshold": 4}, 404, "unknown-sku"),
    ]
    for method, path, body, status, slug in cases:
        response = await client.request(method, API + path, json=body, headers=staff_headers)
        assert response.status_code == status, (path, body, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"].endswith("/" + slug)

    stock = (await client.get(f"{API}/stock/CAP-1", headers=staff_headers)).json()
    assert [(level["warehouse"], level["on_hand"]) for level in stock["warehouses"]] == [("W1", 5)]
    assert stock["low_stock_threshold"] is None


async def test_staff_give_a_sku_its_own_low_stock_threshold_and_take_it_back(
    client: httpx.AsyncClient, runtime: Runtime, staff_headers: dict[str, str]
) -> None:
    await create_product(runtime, "LAMP-7")
    put = await client.put(
        f"{API}/stock/LAMP-7", json={"low_stock_threshold": 12}, headers=staff_headers
    )
    assert put.status_code == 200, put.text
    assert put.json()["low_stock_threshold"] == 12
    changed = await client.put(
        f"{API}/stock/LAMP-7", json={"low_stock_threshold": 0}, headers=staff_headers
    )
    assert changed.json()["low_stock_threshold"] == 0
    read = await client.get(f"{API}/stock/LAMP-7", headers=staff_headers)
    assert read.json()["low_stock_threshold"] == 0

    reset = await client.put(
        f"{API}/stock/LAMP-7", json={"low_stock_threshold": None}, headers=staff_headers
    )
    assert reset.status_code == 200
    read = await client.get(f"{API}/stock/LAMP-7", headers=staff_headers)
    assert read.json()["low_stock_threshold"] is None


async def test_stock_changes_reach_cached_product_pages(
    client: httpx.AsyncClient, runtime: Runtime, staff_headers: dict[str, str]
) -> None:
    product_id = await create_product(runtime, "LAMP-1")
    await client.post(
        f"{API}/warehouses", json={"code": "W1", "name": "One"}, headers=staff_headers
    )
    page = f"{API}/products/{product_id}"
    assert (await client.get(page)).json()["variants"][0]["available"] == 0  # now cached

    await client.put(f"{API}/stock/LAMP-1/W1", json={"on_hand": 6}, headers=staff_headers)
    await drain_events(runtime)  # StockChanged -> the catalog drops the cached page
    assert (await client.get(page)).json()["variants"][0]["available"] == 6

    async with runtime.db.session() as session:
        await service.reserve_stock(session, reference=uuid.uuid4(), lines=[("LAMP-1", 4)])
        await session.commit()
    await drain_events(runtime)
    assert (await client.get(page)).json()["variants"][0]["available"] == 2
