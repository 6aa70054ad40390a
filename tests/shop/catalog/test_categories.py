"""Reading, changing and archiving one category; what the list and new products see."""

from __future__ import annotations

import httpx

from tests.support.shop import create_category, create_product, problem_slug

MISSING = "00000000-0000-7000-8000-000000000000"


async def test_staff_renames_moves_and_reads_a_category_and_the_list_follows(
    client: httpx.AsyncClient, staff_headers: dict[str, str]
) -> None:
    home = await create_category(client, staff_headers, "Home")
    kitchen = await create_category(client, staff_headers, "Kitchen")
    url = f"/api/v1/categories/{kitchen['id']}"
    assert (await client.get(url)).json() == kitchen
    await client.get("/api/v1/categories")  # cached before the change

    patched = await client.patch(
        url,
        json={"name": "Kitchenware", "slug": "kitchenware", "parent_id": home["id"]},
        headers=staff_headers,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json() | {} == kitchen | {
        "name": "Kitchenware",
        "slug": "kitchenware",
        "parent_id": home["id"],
    }
    listed = {c["id"]: c for c in (await client.get("/api/v1/categories")).json()}
    assert listed[kitchen["id"]]["name"] == "Kitchenware"
    assert listed[kitchen["id"]]["parent_id"] == home["id"]

    top = await client.patch(url, json={"parent_id": None}, headers=staff_headers)
    assert top.status_code == 200 and top.json()["parent_id"] is None


async def test_changes_that_would_break_the_tree_or_clash_are_refused(
    client: httpx.AsyncClient, staff_headers: dict[str, str], customer_headers: dict[str, str]
) -> None:
    root = await create_category(client, staff_headers, "Garden")
    child = await create_category(client, staff_headers, "Tools", parent_id=root["id"])
    other = await create_category(client, staff_headers, "Outdoor")
    url = f"/api/v1/categories/{root['id']}"

    below_itself = await client.patch(url, json={"parent_id": child["id"]}, headers=staff_headers)
    assert below_itself.status_code == 422 and problem_slug(below_itself) == "category-cycle"
    own_parent = await client.patch(url, json={"parent_id": root["id"]}, headers=staff_headers)
    assert own_parent.status_code == 422 and problem_slug(own_parent) == "category-cycle"
    unknown = await client.patch(url, json={"parent_id": MISSING}, headers=staff_headers)
    assert unknown.status_code == 422 and problem_slug(unknown) == "unknown-category"
    clash = await client.patch(url, json={"slug": other["slug"]}, headers=staff_headers)
    assert clash.status_code == 409 and problem_slug(clash) == "slug-taken"
    null_name = await client.patch(url, json={"name": None}, headers=staff_headers)
    assert null_name.status_code == 422 and problem_slug(null_name) == "validation-error"
    bad_slug = await client.patch(url, json={"slug": "Not A Slug"}, headers=staff_headers)
    assert bad_slug.status_code == 422 and problem_slug(bad_slug) == "validation-error"
    missing = await client.get(f"/api/v1/categories/{MISSING}")
    assert missing.status_code == 404 and problem_slug(missing) == "category-not-found"
    assert (await client.patch(url, json={"name": "x"})).status_code == 401
    forbidden = await client.delete(url, headers=customer_headers)
    assert forbidden.status_code == 403 and problem_slug(forbidden) == "permission-denied"
    assert (await client.get(url)).json()["name"] == "Garden"


async def test_archiving_waits_for_an_empty_category_then_hides_it(
    client: httpx.AsyncClient, staff_headers: dict[str, str]
) -> None:
    parent = await create_category(client, staff_headers, "Lighting")
    child = await create_category(client, staff_headers, "Lamps", parent_id=parent["id"])
    product = await create_product(client, staff_headers, "Desk lamp", category_id=child["id"])
    parent_url = f"/api/v1/categories/{parent['id']}"
    child_url = f"/api/v1/categories/{child['id']}"
    await client.get("/api/v1/categories")

    with_child = await client.delete(parent_url, headers=staff_headers)
    assert with_child.status_code == 422 and problem_slug(with_child) == "category-not-empty"
    with_product = await client.delete(child_url, headers=staff_headers)
    assert with_product.status_code == 422 and problem_slug(with_product) == "category-not-empty"

    moved = await client.patch(
        f"/api/v1/products/{product['id']}", json={"category_id": None}, headers=staff_headers
    )
    assert moved.status_code == 200
    assert (await client.delete(child_url, headers=staff_headers)).status_code == 204
    assert (await client.delete(parent_url, headers=staff_headers)).status_code == 204

    assert (await client.get("/api/v1/categories")).json() == []
    gone = await client.get(child_url)
    assert gone.status_code == 404 and problem_slug(gone) == "category-not-found"
    again = await client.delete(child_url, headers=staff_headers)
    assert again.status_code == 404
    refused = await client.post(
        "/api/v1/products",
        json={
            "name": "Floor lamp",
            "category_id": child["id"],
            "variants": [{"sku": "FLOOR-1", "price": {"amount": 1, "currency": "USD"}}],
        },
        headers=staff_headers,
    )
    assert refused.status_code == 422 and problem_slug(refused) == "unknown-category"
    under_archived = await client.post(
        "/api/v1/categories",
        json={"name": "Bulbs", "parent_id": parent["id"]},
        headers=staff_headers,
    )
    assert under_archived.status_code == 422 and problem_slug(under_archived) == "unknown-category"
