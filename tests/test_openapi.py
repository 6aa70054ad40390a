"""The published OpenAPI schema documents every endpoint's error responses as problem+json."""

from __future__ import annotations

import httpx

# Endpoints that cannot fail in a way the client could act on.
ALWAYS_OK = {("get", "/health/live"), ("get", "/metrics")}


async def test_every_operation_documents_its_errors(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
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
            documented = [
                status
                for status, response in errors.items()
                if "application/problem+json" in response.get("content", {}) or status == "503"
            ]
            if not documented:
                missing.append(f"{method.upper()} {path}")
    assert missing == []


async def test_schema_names_the_core_paths(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    for path in ("/api/v1/auth/register", "/api/v1/auth/token", "/api/v1/users/me"):
        assert path in paths
