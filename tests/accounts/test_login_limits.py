"""Brute-force protection: failed logins are limited per account and per client address."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from asgi_lifespan import LifespanManager

from shopkeeper.app import create_app
from shopkeeper.core.db import Database
from shopkeeper.core.ratelimit import RateLimiter
from shopkeeper.core.runtime import Runtime
from shopkeeper.core.settings import Settings
from tests.conftest import REDIS_URL, require_service


async def _login(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post("/api/v1/auth/token", data={"username": email, "password": password})


async def test_failed_logins_per_account_are_limited_with_retry_after(
    client: httpx.AsyncClient,
) -> None:
    await client.post(
        "/api/v1/auth/register", json={"email": "bf@example.com", "password": "right-password"}
    )
    for _ in range(5):
        assert (await _login(client, "bf@example.com", "wrong-password")).status_code == 401
    blocked = await _login(client, "bf@example.com", "wrong-password")
    assert blocked.status_code == 429
    assert blocked.json()["type"].endswith("/rate-limited")
    assert int(blocked.headers["retry-after"]) >= 1
    # Even the right password waits: the attacker learns nothing from the sixth try.
    assert (await _login(client, "bf@example.com", "right-password")).status_code == 429


async def test_unknown_accounts_fail_like_known_ones(client: httpx.AsyncClient) -> None:
    response = await _login(client, "nobody@example.com", "whatever-1")
    assert response.status_code == 401
    assert response.json()["type"].endswith("/invalid-credentials")


async def test_failures_per_address_are_limited_across_accounts(
    settings_factory: Callable[..., Settings], shared_database: Database
) -> None:
    settings = settings_factory(login_attempts_per_address="3/minute")
    runtime = Runtime(settings=settings, db=shared_database, ratelimiter=RateLimiter(settings))
    app = create_app(runtime=runtime)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client,
    ):
        for index in range(3):
            assert (await _login(client, f"spray{index}@example.com", "x" * 8)).status_code == 401
        assert (await _login(client, "spray9@example.com", "x" * 8)).status_code == 429


async def test_success_resets_the_account_counter(client: httpx.AsyncClient) -> None:
    await client.post(
        "/api/v1/auth/register", json={"email": "ok@example.com", "password": "right-password"}
    )
    for _ in range(4):
        await _login(client, "ok@example.com", "wrong-password")
    assert (await _login(client, "ok@example.com", "right-password")).status_code == 200
    for _ in range(4):
        assert (await _login(client, "ok@example.com", "wrong-password")).status_code == 401


@pytest.fixture
async def redis_limited_apps(
    settings_factory: Callable[..., Settings], shared_database: Database, runtime: Runtime
) -> AsyncIterator[list[httpx.AsyncClient]]:
    """Two app instances sharing limits only through Redis, as two server processes would."""
    require_service("Redis", "127.0.0.1", 6379)
    namespace = f"test-{secrets.token_hex(4)}"
    clients = []
    managers = []
    for _ in range(2):
        settings = settings_factory(redis_url=REDIS_URL, redis_namespace=namespace)
        runtime = Runtime(settings=settings, db=shared_database, ratelimiter=RateLimiter(settings))
        app = create_app(runtime=runtime)
        manager = LifespanManager(app)
        await manager.__aenter__()
        managers.append(manager)
        clients.append(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
        )
    yield clients
    for client in clients:
        await client.aclose()
    for manager in managers:
        await manager.__aexit__(None, None, None)


async def test_limits_are_shared_through_redis(redis_limited_apps: list[httpx.AsyncClient]) -> None:
    first, second = redis_limited_apps
    email = f"redis-{secrets.token_hex(4)}@example.com"
    await first.post("/api/v1/auth/register", json={"email": email, "password": "right-password"})
    for index in range(5):
        client = first if index % 2 == 0 else second
        assert (await _login(client, email, "wrong-password")).status_code == 401
    assert (await _login(second, email, "wrong-password")).status_code == 429
    assert (await _login(first, email, "wrong-password")).status_code == 429
