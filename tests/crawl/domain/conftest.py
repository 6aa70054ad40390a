"""The crawl domain's tests run on SQLite and PostgreSQL with the SQL frontier, and on
PostgreSQL with the Redis frontier (`backend` = "redis")."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from shopkeeper.core.runtime import Runtime
from shopkeeper.core.settings import Settings
from tests.conftest import REDIS_URL, require_service
from tests.support.crawl_site_remote import RemoteCrawlSite


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


async def api_key(runtime: Runtime, *scopes: str) -> dict[str, str]:
    """`Authorization` headers with a new API key holding `scopes`."""
    from shopkeeper.accounts.service import create_api_key

    async with runtime.db.session() as session:
        _, key = await create_api_key(
            session, name=f"test-{secrets.token_hex(3)}", scopes=[*scopes]
        )
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
async def client(app: FastAPI, runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """A client holding a `crawl:read` + `crawl:write` key (the 401/403 tests make their own)."""
    headers = await api_key(runtime, "crawl:read", "crawl:write")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test", headers=headers
    ) as http:
        yield http


@pytest.fixture(scope="session")
def remote_site_server() -> Iterator[RemoteCrawlSite]:
    """The site in its own process for the multi-process tests: arrival times stamped by a
    process that no test or worker competes with for a GIL."""
    with RemoteCrawlSite(first_address=70) as site:
        yield site


@pytest.fixture
def remote_site(remote_site_server: RemoteCrawlSite) -> Iterator[RemoteCrawlSite]:
    remote_site_server.reset()
    yield remote_site_server
