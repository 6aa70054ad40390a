"""The published OpenAPI schema documents every endpoint's error responses as problem+json."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from shopkeeper.app import create_app
from tests.conftest import make_settings

# Endpoints that cannot fail in a way the client could act on.
ALWAYS_OK = {("get", "/health/live"), ("get", "/metrics")}
# Endpoints that speak another product's protocol answer errors in its format, not problem+json.
PROTOCOL_PREFIXES = (
    "/api/v1/logs/loki/",
    "/api/v1/logs/es/",
    "/api/v1/logs/otlp/",
)


@pytest.fixture(scope="module")
def schema(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The document of an app with every system on (tests elsewhere run most apps with logs off,
    since chDB lets one process own one directory; building the document opens no storage)."""
    root = tmp_path_factory.mktemp("openapi")
    settings = make_settings(
        f"sqlite+aiosqlite:///{root / 'openapi.db'}",
        Path(root),
        logs_enabled=True,
        crawl_enabled=True,
    )
    document: dict[str, Any] = create_app(settings).openapi()
    return document


def test_every_system_is_in_the_document(schema: dict[str, Any]) -> None:
    paths = schema["paths"]
    for path in ("/api/v1/products", "/api/v1/logs/ingest", "/api/v1/crawl/crawls", "/api/v1/keys"):
        assert path in paths, path


def test_every_operation_documents_its_errors(schema: dict[str, Any]) -> None:
    missing = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if (method, path) in ALWAYS_OK:
                continue
            errors = {
                status: response
                for status, response in operation["responses"].items()
                if status[0] in "45"
            }
            protocol = path.startswith(PROTOCOL_PREFIXES)
            documented = [
                status
                for status, response in errors.items()
                if "application/problem+json" in response.get("content", {})
                or status == "503"
                or (protocol and response.get("content"))
            ]
            if not documented:
                missing.append(f"{method.upper()} {path}")
    assert missing == []


async def test_schema_names_the_core_paths(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    for path in ("/api/v1/auth/register", "/api/v1/auth/token", "/api/v1/users/me"):
        assert path in paths


# Endpoints a signed-in customer (or a guest with a cart token) may call: they check ownership
# per object, not a permission. Every other authenticated endpoint must name its permission.
CUSTOMER_ENDPOINTS = {
    ("get", "/api/v1/users/me"),
    ("post", "/api/v1/carts"),
    ("get", "/api/v1/carts/{cart_id}"),
    ("post", "/api/v1/carts/{cart_id}/items"),
    ("patch", "/api/v1/carts/{cart_id}/items/{sku}"),
    ("delete", "/api/v1/carts/{cart_id}/items/{sku}"),
    ("post", "/api/v1/carts/{cart_id}/voucher"),
    ("delete", "/api/v1/carts/{cart_id}/voucher"),
    ("get", "/api/v1/carts/{cart_id}/shipping-methods"),
    ("post", "/api/v1/orders"),
    ("get", "/api/v1/orders"),
    ("get", "/api/v1/orders/{order_id}"),
    ("post", "/api/v1/orders/{order_id}/cancel"),
    ("get", "/api/v1/orders/{order_id}/transitions"),
    ("post", "/api/v1/orders/{order_id}/payments"),
    ("get", "/api/v1/payments/{payment_id}"),
    ("post", "/api/v1/payments/{payment_id}/sandbox/{outcome}"),
}


def test_every_staff_endpoint_names_its_permission(schema: dict[str, Any]) -> None:
    without_permission = set()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            requirements = operation.get("security")
            if not requirements:
                continue  # public
            scopes = [
                scope for requirement in requirements for s in requirement.values() for scope in s
            ]
            if not scopes:
                without_permission.add((method, path))
    assert without_permission - CUSTOMER_ENDPOINTS == set()
    # The allow-list names real endpoints only, so it cannot silently hide a new one.
    assert CUSTOMER_ENDPOINTS - without_permission == set()
