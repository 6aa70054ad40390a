"""The alerts endpoints appear in the OpenAPI document with their errors (problem+json) and the
permission each needs."""

from __future__ import annotations

import httpx


async def test_alert_operations_document_errors_and_permissions(
    alerts_client: httpx.AsyncClient,
) -> None:
    paths = (await alerts_client.get("/openapi.json")).json()["paths"]
    operations = [
        (method, path, operation)
        for path, by_method in paths.items()
        if path.startswith("/api/v1/logs/alerts")
        for method, operation in by_method.items()
    ]
    assert sorted((method, path) for method, path, _ in operations) == [
        ("delete", "/api/v1/logs/alerts/{alert_id}"),
        ("get", "/api/v1/logs/alerts"),
        ("get", "/api/v1/logs/alerts/{alert_id}"),
        ("get", "/api/v1/logs/alerts/{alert_id}/history"),
        ("patch", "/api/v1/logs/alerts/{alert_id}"),
        ("post", "/api/v1/logs/alerts"),
    ]
    for method, path, operation in operations:
        errors = operation["responses"]
        assert {"401", "403"} <= set(errors), (method, path)
        for status in set(errors) - {"200", "201", "204"}:
            assert "application/problem+json" in errors[status]["content"], (method, path)
        if "{alert_id}" in path:
            assert "404" in errors, (method, path)
        scopes = {
            scope
            for requirement in operation["security"]
            for listed in requirement.values()
            for scope in listed
        }
        expected = "logs:read" if method == "get" else "logs:admin"
        assert scopes == {expected}, (method, path)
