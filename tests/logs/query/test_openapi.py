"""The query endpoints pass the OpenAPI rules the shop's are held to (tests/test_openapi.py):
each documents its errors (problem+json for credentials, plain text as Loki otherwise) and names
the permission it needs; GET and POST have their own operation ids."""

from __future__ import annotations

import httpx


async def test_query_operations_document_errors_and_name_logs_read(
    logs_client: httpx.AsyncClient,
) -> None:
    paths = (await logs_client.get("/openapi.json")).json()["paths"]
    operations = [
        (method, path, operation)
        for path, by_method in paths.items()
        if path.startswith("/api/v1/logs/loki/api/v1/") and not path.endswith("/push")
        for method, operation in by_method.items()
    ]
    assert len(operations) == 13
    ids = [operation["operationId"] for _, _, operation in operations]
    assert len(set(ids)) == len(ids)
    for method, path, operation in operations:
        errors = operation["responses"]
        assert {"401", "403"} <= set(errors), (method, path)
        assert "application/problem+json" in errors["401"]["content"], (method, path)
        scopes = {
            scope
            for requirement in operation["security"]
            for s in requirement.values()
            for scope in s
        }
        assert scopes == {"logs:read"}, (method, path)
