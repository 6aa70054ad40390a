"""Creating, reading, changing and archiving products; who may do what; bad input."""

from __future__ import annotations

import httpx

from tests.shop.catalog.conftest import create_category, create_product, product_body


async def test_staff_creates_a_product_anyone_reads_it_by_id_and_slug(
    client: httpx.AsyncClient, staff_headers: dict[str, str]
) -> None:
    shirts = await create_category(client, staff_headers, "Shirts")
    body = product_body(
        "Classic T-Shirt",
        description="Soft cotton",
        category_id=shirts["id"],
        attributes={"material": "cotton"},
        skus=2,
        variant_attributes=[{"color": "red"}, {"color": "blue"}],
    )
    response = await client.post("/api/v1/products", json=body, headers=staff_headers)
    assert response.status_code == 201, response.text
    product = response.json()
    assert response.headers["location"] == f"/api/v1/products/{product['id']}"
    assert product["slug"] == "classic-t-shirt"
    assert product["category_id"] == shirts["id"]
    assert [v["sku"] for v in product["variants"]] == [v["sku"] for v in body["variants"]]
    assert product["variants"][0]["price"] == {"amount": 1000, "currency": "USD"}
    assert product["variants"][0]["available"] == 0

    by_id = await client.get(f"/api/v1/products/{product['id']}")
    by_slug = await client.get("/api/v1/products/classic-t-shirt")
    assert by_id.status_code == by_slug.status_code == 200
    assert by_id.json() == by_slug.json() == product
    assert by_id.headers["cache-control"].startswith("public")


async def test_slugs_are_generated_unique_and_explicit_clashes_are_409(
    client: httpx.AsyncClient, staff_headers: dict[str, str]
) -> None:
    first = await create_product(client, staff_headers, "Mug")
    second = await create_product(client, staff_headers, "Mug")
    assert (first["slug"], second["slug"]) == ("mug", "mug-2")
    body = product_body("Another mug") | {"slug": "mug"}
    clash = await client.post("/api/v1/products", json=body, headers=staff_headers)
    assert clash.status_code == 409
    assert clash.json()["type"].endswith("/slug-taken")


async def test_a_taken_sku_is_409_and_creates_nothing(
    client: httpx.AsyncClient, staff_headers: dict[str, str]
) -> None:
    first = await create_product(client, staff_headers, "Lamp")
    body = product_body("Other lamp")
    body["variants"][0]["sku"] = first["variants"][0]["sku"]
    response = await client.post("/api/v1/products", json=body, headers=staff_headers)
    assert response.status_code == 409
    assert response.json()["type"].endswith("/sku-taken")
    assert response.json()["sku"] == first["variants"][0]["sku"]
    assert (await client.get("/api/v1/products/other-lamp")).status_code == 404


async def test_a_price_in_another_currency_is_422(
    client: httpx.AsyncClient, staff_headers: dict[str, str]
) -> None:
    body = product_body("Euro thing", currency="EUR")
    response = await client.post("/api/v1/products", json=body, headers=staff_headers)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/currency-not-accepted")


async def test_writes_need_staff_reads_are_public(
    client: httpx.AsyncClient, customer_headers: dict[str, str], staff_headers: dict[str, str]
) -> None:
    body = product_body("Guarded")
    assert (await client.post("/api/v1/products", json=body)).status_code == 401
    forbidden = await client.post("/api/v1/products", json=body, headers=customer_headers)
    assert forbidden.status_code == 403
    assert (await client.post("/api/v1/categories", json={"name": "X"})).status_code == 401
    product = await create_product(client, staff_headers, "Guarded")
    url = f"/api/v1/products/{product['id']}"
    assert (
        await client.patch(url, json={"name": "N"}, headers=customer_headers)
    ).status_code == 403
    assert (await client.delete(url)).status_code == 401
    assert (await client.get(url)).status_code == 200
    assert (await client.get("/api/v1/products")).status_code == 200
    assert (await client.get("/api/v1/categories")).status_code == 200


async def test_patch_changes_fields_and_is_visible_at_once(
    client: httpx.AsyncClient, staff_headers: dict[str, str]
) -> None:
    product = await create_product(client, staff_headers, "Old name")
    url = f"/api/v1/products/{product['id']}"
    assert (await client.get(url)).json()["name"] == "Old name"  # now cached
    response = await client.patch(
        url, json={"name": "New name", "attributes": {"k": "v"}}, headers=staff_headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "New name"
    assert response.json()["slug"] == product["slug"]
    fresh = (await client.get(url)).json()
    assert (fresh["name"], fresh["attributes"]) == ("New name", {"k": "v"})
    listed = (await client.get("/api/v1/products")).json()["items"]
    assert [item["name"] for item in listed] == ["New name"]


async def test_delete_archives_the_product_out_of_sight(
    client: httpx.AsyncClient, staff_headers: dict[str, str]
) -> None:
    product = await create_product(client, staff_headers, "Doomed")
    url = f"/api/v1/products/{product['id']}"
    assert (await client.get(url)).status_code == 200
    assert (await client.get("/api/v1/products")).json()["items"]
    assert (await client.delete(url, headers=staff_headers)).status_code == 204
    assert (await client.get(url)).status_code == 404
    assert (await client.get("/api/v1/products")).json()["items"] == []
    assert (await client.delete(url, headers=staff_headers)).status_code == 404


async def test_bad_input_is_problem_json_and_changes_nothing(
    client: httpx.AsyncClient, staff_headers: dict[str, str]
) -> None:
    cases = [
        {"name": "No variants", "variants": []},
        product_body(""),
        product_body("Bad price")
        | {"variants": [{"sku": "X-1", "price": {"amount": 1.5, "currency": "USD"}}]},
        product_body("Unknown field") | {"colour": "red"},
        product_body("Bad slug") | {"slug": "Not A Slug"},
        product_body("Unknown category") | {"category_id": "018f0000-0000-7000-8000-000000000000"},
    ]
    for body in cases:
        response = await client.post("/api/v1/products", json=body, headers=staff_headers)
        assert response.status_code == 422, (body, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    assert (await client.get("/api/v1/products")).json()["items"] == []
    for query in (
        "limit=0",
        "limit=101",
        "sort=cheapest",
        "cursor=garbage",
        "min_price=-1",
        "sort=relevance",
    ):
        response = await client.get(f"/api/v1/products?{query}")
        assert response.status_code == 422, (query, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    missing = await client.get("/api/v1/products/no-such-thing")
    assert missing.status_code == 404
    assert missing.json()["type"].endswith("/product-not-found")
