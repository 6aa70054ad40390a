"""Issue 18 item 12: the OpenAPI document says what the application does."""

from __future__ import annotations

import uuid

import httpx

PROBLEM = "application/problem+json"
IDEMPOTENT = [
    ("post", "/api/v1/orders"),
    ("post", "/api/v1/orders/{order_id}/payments"),
    ("post", "/api/v1/payments/{payment_id}/refunds"),
]


async def test_idempotency_key_is_documented_as_required(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    for method, path in IDEMPOTENT:
        [header] = [
            p
            for p in document["paths"][path][method]["parameters"]
            if p["name"] == "Idempotency-Key"
        ]
        assert header["required"] is True
        assert header["schema"]["type"] == "string"
    response = await client.post("/api/v1/orders", json={})
    assert response.status_code == 400  # what "required" means for this header (API.md)


async def test_every_error_response_is_documented_as_problem_json(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/openapi.json")).json()
    wrong = []
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            for status, response in operation["responses"].items():
                media = list(response.get("content", {}))
                if status.isdigit() and int(status) >= 400 and media != [PROBLEM]:
                    wrong.append(f"{method} {path} {status}")
            if "requestBody" in operation and "400" not in operation["responses"]:
                wrong.append(f"{method} {path}: the 400 for an unparsable body")
    assert wrong == []
    assert "HTTPValidationError" not in document["components"]["schemas"]


async def test_405_allow_lists_every_method_of_the_path(client: httpx.AsyncClient) -> None:
    response = await client.delete("/api/v1/orders")
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"
    allowed = {method.strip() for method in response.headers["allow"].split(",")}
    assert {"GET", "POST"} <= allowed
    response = await client.put(f"/api/v1/carts/{uuid.uuid4()}/items/SKU-1")
    allowed = {method.strip() for method in response.headers["allow"].split(",")}
    assert {"PATCH", "DELETE"} <= allowed
