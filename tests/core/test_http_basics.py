"""Health, metrics, request ids, and problem+json for every kind of error."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from shopkeeper.app import create_app
from shopkeeper.core.db import Database
from shopkeeper.core.runtime import Runtime
from shopkeeper.core.settings import Settings

PROBLEM = "application/problem+json"


async def test_liveness(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readiness_checks_the_database(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/ready")
    assert response.status_code == 200
    assert response.json()["checks"]["database"] == "ok"


async def test_readiness_is_503_naming_the_failed_dependency(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    # A database URL that cannot be opened: a directory where the SQLite file should be.
    (tmp_path / "db-is-a-dir").mkdir()
    settings = settings_factory(database_url=f"sqlite+aiosqlite:///{tmp_path / 'db-is-a-dir'}")
    app = create_app(settings)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client,
    ):
        response = await client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["failed"] == ["database"]


async def test_metrics_count_requests_by_route_template(client: httpx.AsyncClient) -> None:
    await client.get("/api/v1/users/me")
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert (
        'shopkeeper_http_requests_total{method="GET",route="/api/v1/users/me",status="401"}'
        in response.text
    )
    assert "shopkeeper_http_request_duration_seconds_bucket" in response.text


async def test_request_id_is_echoed_or_generated(client: httpx.AsyncClient) -> None:
    echoed = await client.get("/health/live", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"
    generated = await client.get("/health/live", headers={"X-Request-ID": "bad id\nwith newline"})
    assert generated.headers["x-request-id"] not in ("", "bad id\nwith newline")


async def test_unknown_path_is_problem_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"].endswith("/not-found")


async def test_wrong_method_is_problem_405(client: httpx.AsyncClient) -> None:
    response = await client.delete("/api/v1/users/me")
    assert response.status_code == 405
    assert response.headers["content-type"] == PROBLEM


async def test_malformed_json_is_422_with_errors(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/auth/register",
        content=b'{"email": "a@b.co", "password":',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422
    body = response.json()
    assert body["type"].endswith("/validation-error")
    assert body["errors"] and {"loc", "msg"} <= set(body["errors"][0])


async def test_wrong_types_are_422(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/auth/register", json={"email": 12, "password": ["x"]})
    assert response.status_code == 422
    locations = {tuple(error["loc"]) for error in response.json()["errors"]}
    assert ("body", "email") in locations and ("body", "password") in locations


async def test_oversize_body_is_413_and_changes_nothing(client: httpx.AsyncClient) -> None:
    big = b'{"email": "big@example.com", "password": "' + b"x" * (1024 * 1024) + b'"}'
    response = await client.post(
        "/api/v1/auth/register", content=big, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM
    login = await client.post(
        "/api/v1/auth/token", data={"username": "big@example.com", "password": "x"}
    )
    assert login.status_code == 401


async def test_streamed_oversize_body_is_413(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b"x" * 65536

    response = await client.post(
        "/api/v1/auth/register", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


async def test_registration_cannot_grant_staff(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/auth/register",
        json={"email": "sneaky@example.com", "password": "password-1", "is_staff": True},
    )
    assert response.status_code == 422
    login = await client.post(
        "/api/v1/auth/token", data={"username": "sneaky@example.com", "password": "password-1"}
    )
    assert login.status_code == 401


async def test_short_password_and_bad_email_are_422(client: httpx.AsyncClient) -> None:
    short = await client.post(
        "/api/v1/auth/register", json={"email": "s@example.com", "password": "1234567"}
    )
    assert short.status_code == 422
    bad_email = await client.post(
        "/api/v1/auth/register", json={"email": "not-an-email", "password": "password-1"}
    )
    assert bad_email.status_code == 422


async def test_a_lost_database_connection_is_503_with_retry_after_and_the_next_request_works(
    client: httpx.AsyncClient, runtime: Runtime, backend: str
) -> None:
    """After a database restart the pooled connections are dead; without pre-ping the first
    request to use one learns it. That request is told to retry (503), not "internal error"."""
    if backend != "postgresql":
        pytest.skip("an embedded SQLite file has no connection to lose")
    async with runtime.db.session() as session:
        await session.execute(text("SELECT 1"))  # the pool holds a live connection
    admin = create_async_engine(runtime.settings.database_url, poolclass=NullPool)
    async with admin.connect() as connection:
        killed = await connection.scalar(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
    await admin.dispose()
    assert killed and killed >= 1

    first = await client.get("/api/v1/products")
    second = await client.get("/api/v1/products")

    assert first.status_code == 503, first.text
    assert first.headers["content-type"].startswith("application/problem+json")
    assert first.json()["type"].endswith("/database-unavailable")
    assert int(first.headers["retry-after"]) >= 1
    assert second.status_code == 200, second.text


async def test_a_server_opens_its_database_pool_at_start_up(
    settings: Settings, backend: str
) -> None:
    """So the first burst of traffic does not wait for connections being opened."""
    database = Database(settings)
    try:
        opened = await database.warm_up()
        pool: Any = database.engine.pool
        if backend == "postgresql":
            assert opened == settings.database_pool_size
            assert pool.checkedin() == settings.database_pool_size
        else:
            assert opened == 0
    finally:
        await database.dispose()
