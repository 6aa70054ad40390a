"""The ingest endpoints pass the OpenAPI rules the shop's are held to (tests/test_openapi.py):
each documents its error responses and names the permission it needs."""

from __future__ import annotations

import httpx

INGEST_PREFIXES = (
    "/api/v1/logs/ingest",
    "/api/v1/logs/loki/api/v1/push",
    "/api/v1/logs/es",
    "/api/v1/logs/otlp",
)


async def test_ingest_operations_document_errors_and_name_logs_write(
    logs_client: httpx.AsyncClient,
) -> None:
    paths = (await logs_client.get("/openapi.json")).json()["paths"]
    operations = [
        (method, path, operation)
        for path, by_method in paths.items()
        if path.startswith(INGEST_PREFIXES)
        for method, operation in by_method.items()
    ]
    assert len(operations) >= 9
    for method, path, operation in operations:
        errors = {status for status in operation["responses"] if status[0] in "45"}
        assert {"401", "403", "429", "503"} <= errors, (method, path)
        scopes = {
            scope
            for requirement in operation["security"]
            for s in requirement.values()
            for scope in s
        }
        assert scopes == {"logs:write"}, (method, path)
