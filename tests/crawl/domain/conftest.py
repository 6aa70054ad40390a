"""The crawl domain's tests run on SQLite and PostgreSQL with the SQL frontier, and on
PostgreSQL with the Redis frontier (`backend` = "redis")."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from shopkeeper.core.settings import Settings
from tests.conftest import REDIS_URL, require_service


@pytest.fixture(scope="session", params=["sqlite", "postgresql", "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def crawl_overrides(backend: str) -> dict[str, Any]:
    """Settings of the crawl under test: short leases and heartbeats, the frontier chosen."""
    values: dict[str, Any] = {
        "crawl_lease_seconds": 3.0,
        "crawl_heartbeat_seconds": 0.5,
        "crawl_retry_base_seconds": 0.2,
        "crawl_retry_max_seconds": 1.0,
        "crawl_fetch_timeout_seconds": 2.0,
        "crawl_worker_concurrency": 16,
    }
    if backend == "redis":
        require_service("Redis", "127.0.0.1", 6379)
        values.update(
            crawl_frontier="redis",
            redis_url=REDIS_URL,
            redis_namespace=f"sktest-{secrets.token_hex(4)}",
        )
    return values


@pytest.fixture
async def settings(
    settings_factory: Callable[..., Settings], crawl_overrides: dict[str, Any]
) -> AsyncIterator[Settings]:
    built = settings_factory(**crawl_overrides)
    yield built
    if built.crawl_frontier == "redis":
        import redis.asyncio as redis_asyncio

        from shopkeeper.crawl.frontier.redis import RedisFrontier

        client = redis_asyncio.from_url(REDIS_URL)
        await RedisFrontier(client, namespace=f"{built.redis_namespace}:crawl").delete_namespace()
        await client.aclose()
