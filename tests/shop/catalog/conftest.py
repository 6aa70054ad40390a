"""Catalog fixtures."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis

from shopkeeper.core.cache import cache_namespace
from shopkeeper.core.settings import Settings
from tests.conftest import REDIS_URL, require_service


@pytest.fixture
async def fresh_redis_namespace(settings: Settings) -> AsyncIterator[None]:
    """Forget entries an earlier test left in Redis for this (emptied) database."""
    require_service("Redis", "127.0.0.1", 6379)
    client = redis.from_url(REDIS_URL)
    namespace = cache_namespace(settings.database)

    async def wipe() -> None:
        keys = [key async for key in client.scan_iter(match=f"{namespace}:*")]
        if keys:
            await client.delete(*keys)

    await wipe()
    yield
    await wipe()
    await client.aclose()
