"""The frontier's behavioural suite runs on SQLite, PostgreSQL and Redis."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text

from shopkeeper.core.db import Database
from shopkeeper.crawl.frontier.base import Frontier
from tests.conftest import REDIS_URL, make_settings, require_service

FRONTIER_TABLES = ["crawl_urls", "crawl_host_policies", "crawl_hosts", "crawl_frontier_crawls"]


@dataclass(frozen=True)
class FrontierTarget:
    """Where a frontier lives: enough for another process to open the same one."""

    kind: str
    url: str
    namespace: str = ""


@pytest.fixture(scope="session", params=["sqlite", "postgresql", "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def frontier_target(backend: str, request: pytest.FixtureRequest) -> FrontierTarget:
    if backend == "redis":
        require_service("Redis", "127.0.0.1", 6379)
        return FrontierTarget(kind="redis", url=REDIS_URL)
    return FrontierTarget(kind="sql", url=str(request.getfixturevalue("database_url")))


@pytest.fixture
async def target(frontier_target: FrontierTarget) -> FrontierTarget:
    """This test's own namespace on Redis (SQL tests empty the tables afterwards)."""
    if frontier_target.kind == "redis":
        return FrontierTarget("redis", frontier_target.url, f"sktest-{secrets.token_hex(4)}")
    return frontier_target


@pytest.fixture
async def frontier(target: FrontierTarget, tmp_path: Path) -> AsyncIterator[Frontier]:
    opened = await open_frontier(target, tmp_path)
    try:
        yield opened
    finally:
        await close_frontier(opened, target, tmp_path, clean=True)


async def open_frontier(target: FrontierTarget, var_dir: Path) -> Frontier:
    if target.kind == "redis":
        import redis.asyncio as redis_asyncio
        from shopkeeper.crawl.frontier.redis import RedisFrontier

        client = redis_asyncio.from_url(target.url)
        return RedisFrontier(client, namespace=target.namespace, owns_client=True)
    from shopkeeper.crawl.frontier.sql import SQLFrontier

    return SQLFrontier(Database(make_settings(target.url, var_dir)), owns_database=True)


async def close_frontier(
    frontier: Frontier, target: FrontierTarget, var_dir: Path, *, clean: bool = False
) -> None:
    if clean and target.kind == "redis":
        from shopkeeper.crawl.frontier.redis import RedisFrontier

        assert isinstance(frontier, RedisFrontier)
        await frontier.delete_namespace()
    elif clean:
        database = Database(make_settings(target.url, var_dir))
        async with database.engine.begin() as connection:
            for table in FRONTIER_TABLES:
                await connection.execute(text(f"DELETE FROM {table}"))
        await database.dispose()
    await frontier.close()
