"""Caching: ETag/304, a constant number of statements per page, invalidation on writes and on
stock changes, across processes sharing Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import redis.asyncio as redis
from sqlalchemy import event

from shopkeeper.core.cache import Cache
from shopkeeper.core.runtime import Runtime
from shopkeeper.core.settings import Settings
from shopkeeper.shop.catalog import service
from shopkeeper.shop.catalog.schemas import ProductIn
from shopkeeper.shop.inventory import service as inventory
from tests.conftest import REDIS_URL, create_staff
from tests.support.events import drain_events
from tests.support.shop import create_product, product_body


async def test_etag_and_if_none_match_give_304_until_the_product_changes(
    client: httpx.AsyncClient, staff_headers: dict[str, str]
) -> None:
    product = await create_product(client, staff_headers, "Teapot")
    url = f"/api/v1/products/{product['id']}"
    first = await client.get(url)
    etag = first.headers["etag"]
    assert first.headers["cache-control"] == "public, max-age=0, must-revalidate"
    again = await client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    other = await client.get(url, headers={"If-None-Match": '"something-else"'})
    assert other.status_code == 200
    assert other.json() == first.json()

    await client.patch(url, json={"description": "Holds a litre"}, headers=staff_headers)
    changed = await client.get(url, headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.json()["description"] == "Holds a litre"
    assert changed.headers["etag"] != etag

    listing = await client.get("/api/v1/products")
    revalidated = await client.get(
        "/api/v1/products", headers={"If-None-Match": listing.headers["etag"]}
    )
    assert revalidated.status_code == 304


async def _statements_for_listing(runtime: Runtime, client: httpx.AsyncClient, query: str) -> int:
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    engine = runtime.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        response = await client.get(f"/api/v1/products?{query}")
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert response.status_code == 200, response.text
    return len(statements)


async def _bulk_products(runtime: Runtime, count: int, prefix: str) -> None:
    async with runtime.db.session() as session:
        for n in range(count):
            body = ProductIn.model_validate(
                product_body(f"{prefix} {n}", skus=2, variant_attributes=[{}, {}])
            )
            await service.create_product(session, cache=runtime.cache, currency="USD", body=body)


async def test_listing_100_products_issues_a_small_constant_number_of_statements(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    await _bulk_products(runtime, 5, "Few")
    few = await _statements_for_listing(runtime, client, "limit=100")
    await _bulk_products(runtime, 95, "Many")
    many = await _statements_for_listing(runtime, client, "limit=100&sort=name")
    page = (await client.get("/api/v1/products?limit=100")).json()
    assert len(page["items"]) == 100
    assert all(len(item["variants"]) == 2 for item in page["items"])
    assert many == few
    assert many <= 2  # products with their variants and stock (+ BEGIN on SQLite)
    searched = await _statements_for_listing(runtime, client, "limit=100&q=many")
    assert searched <= 2


async def test_a_stock_change_reaches_cached_details_and_listings(
    runtime: Runtime, client: httpx.AsyncClient, staff_headers: dict[str, str]
) -> None:
    product = await create_product(client, staff_headers, "Kettle")
    sku = product["variants"][0]["sku"]
    url = f"/api/v1/products/{product['id']}"
    assert (await client.get(url)).json()["variants"][0]["available"] == 0
    assert (await client.get("/api/v1/products")).json()["items"][0]["variants"][0][
        "available"
    ] == 0
    async with runtime.db.session() as session:
        await inventory.create_warehouse(session, code="main", name="Main")
    async with runtime.db.session() as session:
        await inventory.set_stock_level(session, sku=sku, warehouse_code="main", on_hand=7)
    await drain_events(runtime)
    assert (await client.get(url)).json()["variants"][0]["available"] == 7
    listed = (await client.get("/api/v1/products")).json()["items"][0]
    assert listed["variants"][0]["available"] == 7


@pytest.fixture
async def two_caches() -> AsyncIterator[tuple[str, Cache, Cache]]:
    """Two processes' caches sharing one Redis namespace (started, closed afterwards)."""
    namespace = f"shopkeeper:cache:test-{uuid.uuid4().hex[:8]}"
    first = Cache(redis_url=REDIS_URL, namespace=namespace)
    second = Cache(redis_url=REDIS_URL, namespace=namespace)
    await first.start()
    await second.start()
    try:
        yield namespace, first, second
    finally:
        await first.close()
        await second.close()


class Versions:
    """A loader answering "version 1", "version 2", ... with `tags`, counting its calls."""

    def __init__(self, tags: set[str]) -> None:
        self.tags = tags
        self.calls = 0

    async def __call__(self) -> tuple[bytes, set[str]]:
        self.calls += 1
        return f"version {self.calls}".encode(), self.tags


@pytest.mark.usefixtures("fresh_redis_namespace")
async def test_two_caches_sharing_redis_see_each_others_invalidations(
    two_caches: tuple[str, Cache, Cache],
) -> None:
    _, first, second = two_caches
    load = Versions({"product:1"})

    assert (await first.get_or_load("k", load)).body == b"version 1"
    assert (await second.get_or_load("k", load)).body == b"version 1"  # from L2
    assert load.calls == 1
    assert second.peek("k") is not None
    await first.invalidate({"product:1"})
    # invalidate() returned only after every subscriber dropped the entry.
    assert second.peek("k") is None
    assert (await second.get_or_load("k", load)).body == b"version 2"
    assert (await first.get_or_load("k", load)).body == b"version 2"
    await first.invalidate({"product:2"})
    assert second.peek("k") is not None


@pytest.mark.usefixtures("fresh_redis_namespace")
async def test_a_patch_on_one_server_is_visible_at_once_on_another(
    runtime: Runtime,
    client: httpx.AsyncClient,
    settings_factory: Callable[..., Settings],
    server_factory: Callable[..., Any],
) -> None:
    staff = await create_staff(runtime, client)
    product = await create_product(client, staff, "Traveller")
    settings = settings_factory(redis_url=REDIS_URL)
    first, second = await asyncio.gather(server_factory(settings), server_factory(settings))
    path = f"/api/v1/products/{product['id']}"
    async with httpx.AsyncClient(timeout=10) as http:
        for n in range(5):
            writer, reader = (first, second) if n % 2 == 0 else (second, first)
            # Both processes hold the product (and the listing) in their L1 now.
            for base in (first, second):
                assert (await http.get(base + path)).status_code == 200
                assert (await http.get(base + "/api/v1/products")).status_code == 200
            name = f"Traveller v{n}"
            patched = await http.patch(writer + path, json={"name": name}, headers=staff)
            assert patched.status_code == 200, patched.text
            assert (await http.get(reader + path)).json()["name"] == name
            listed = (await http.get(reader + "/api/v1/products")).json()["items"]
            assert [item["name"] for item in listed] == [name]
        archived = await http.delete(first + path, headers=staff)
        assert archived.status_code == 204
        assert (await http.get(second + path)).status_code == 404


async def test_unshared_entries_stay_out_of_redis_and_still_obey_invalidation(
    two_caches: tuple[str, Cache, Cache],
) -> None:
    """Search pages are cached per process only (`shared=False`): no Redis round trips for
    one-off URLs, yet a write anywhere still removes them everywhere."""
    namespace, first, second = two_caches
    load = Versions({"lists"})
    client = redis.from_url(REDIS_URL)
    try:
        assert (await first.get_or_load("q", load, shared=False)).body == b"version 1"
        assert (await first.get_or_load("q", load, shared=False)).body == b"version 1"  # L1
        assert await client.keys(f"{namespace}:entry:*") == []
        assert (await second.get_or_load("q", load, shared=False)).body == b"version 2"
        await second.invalidate({"lists"})
        assert first.peek("q") is None and second.peek("q") is None
    finally:
        await client.aclose()


async def test_the_local_cache_keeps_to_its_byte_budget_dropping_the_oldest() -> None:
    cache = Cache(max_bytes=250)

    def loader(body: bytes) -> Callable[[], Any]:
        async def load() -> tuple[bytes, set[str]]:
            return body, {"lists"}

        return load

    for key in ("a", "b", "c"):
        await cache.get_or_load(key, loader(b"x" * 100))

    assert cache.peek("a") is None
    assert cache.peek("b") is not None and cache.peek("c") is not None
    await cache.invalidate({"lists"})
    await cache.get_or_load("big", loader(b"y" * 200))
    await cache.get_or_load("small", loader(b"z" * 50))
    assert cache.peek("big") is not None and cache.peek("small") is not None
